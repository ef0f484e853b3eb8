"""The key bar at the bottom of every screen, rebuilt only when what it shows changed."""

from __future__ import annotations

from typing import cast

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # pyright: ignore[reportPrivateUsage]

#: A key as ``Footer.compose`` shows it: the binding, whether it is enabled, its tooltip.
Key = tuple[Binding, bool, str]
#: What the footer shows: its keys, whether the command palette's key is shown, that key.
Shown = tuple[tuple[Key, ...], bool, Key | None]


class KeyFooter(Footer):
    """Textual's ``Footer``, which rebuilds all its keys whenever any binding might have
    changed: a change of focus, of the screen stack, or each time a screen calls
    ``refresh_bindings`` (the runs list does after every poll that changed a row and at
    every cursor move). Here it is rebuilt only when the keys it would show differ from the
    ones it shows, so an idle or a busy dashboard no longer rebuilds an unchanged footer;
    and where only which keys are enabled changed, those are dimmed or lit in place.

    And a key bound to the footer's style is built in it: Textual's keys start compact and
    are told the footer's (not compact) once mounted, so each was styled twice more."""

    _shown: Shown | None = None

    def _keys(self) -> Shown | None:
        """What ``compose`` would show (the app's ``ENABLE_COMMAND_PALETTE`` and
        ``COMMAND_PALETTE_BINDING`` are class constants); None before bindings are ready."""
        if not self._bindings_ready:
            return None
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
        if keys is not None and keys == self._shown:
            return
        redimmed = keys is not None and self._redim(keys)
        self._shown = keys
        if not redimmed:
            await super().recompose()

    def _redim(self, keys: Shown) -> bool:
        """Where only which keys are enabled (or their tooltips) changed, as when the cursor
        moves to a run that ``r`` or ``a`` cannot apply to: the keys shown are updated in
        place. False (nothing done) when the keys themselves differ."""
        shown = self._shown
        if shown is None or shown[1:] != keys[1:]:
            return False
        if [b for b, _, _ in shown[0]] != [b for b, _, _ in keys[0]]:
            return False
        if any(binding.group is not None for binding, _, _ in keys[0]):
            return False  # grouped keys are composed in groups: rebuilt
        first: dict[str, tuple[bool, str]] = {}  # compose shows one key per action, the first
        for binding, enabled, tooltip in keys[0]:
            first.setdefault(binding.action, (enabled, tooltip))
        widgets = [
            key for key in self.query_children(FooterKey) if not key.has_class("-command-palette")
        ]
        if [key.action for key in widgets] != list(first):
            return False
        for key, (enabled, tooltip) in zip(widgets, first.values(), strict=True):
            key._disabled = not enabled  # pyright: ignore[reportPrivateUsage]
            key.set_class(not enabled, "-disabled")
            key.tooltip = tooltip or None
        return True

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            # every key but the command palette's is bound to the footer's compact
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget
