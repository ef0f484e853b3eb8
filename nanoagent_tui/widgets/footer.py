"""The key bar at the bottom of every screen, rebuilt only when what it shows changed."""

from __future__ import annotations

from typing import Any, cast

from textual.app import App, ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # pyright: ignore[reportPrivateUsage]


class KeyFooter(Footer):
    """Textual's ``Footer``, which rebuilds all its keys whenever any binding might have
    changed: a change of focus, of the screen stack, or each time a screen calls
    ``refresh_bindings`` (the runs list does after every poll that changed a row and at
    every cursor move). Here it is rebuilt only when the keys it would show differ from the
    ones it shows, so an idle or a busy dashboard no longer rebuilds an unchanged footer.

    And a key bound to the footer's style is built in it: Textual's keys start compact and
    are told the footer's (not compact) once mounted, so each was styled twice more."""

    _shown: object = None

    def _keys(self) -> tuple[Any, ...]:
        """What ``compose`` would show: every binding shown, enabled or not, its tooltip,
        and the command palette's key (the app's ``ENABLE_COMMAND_PALETTE`` and
        ``COMMAND_PALETTE_BINDING`` are class constants)."""
        if not self._bindings_ready:
            return ()
        active = self.screen.active_bindings
        keys = tuple(
            (binding, enabled, tooltip)
            for (_, binding, enabled, tooltip) in active.values()
            if binding.show
        )
        palette = active.get(cast("App[object]", self.app).COMMAND_PALETTE_BINDING)
        return (keys, self.show_command_palette, None if palette is None else palette[1:])

    async def recompose(self) -> None:
        if not self.is_attached or self._pruning:
            return
        keys = self._keys()
        if keys == self._shown:
            return
        self._shown = keys
        await super().recompose()

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            # every key but the command palette's is bound to the footer's compact
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget
