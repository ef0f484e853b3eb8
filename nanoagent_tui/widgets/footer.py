"""The key bar at the bottom of every screen, rebuilt only when what it shows changed."""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class KeyFooter(Footer):
    """Textual's ``Footer``, which rebuilds all its keys (each styled twice as it mounts)
    whenever any binding might have changed: a change of focus, of the screen stack, or each
    time a screen calls ``refresh_bindings`` (the runs list does after every poll that
    changed a row). Here it is rebuilt only when the keys it would show differ from the
    ones it shows: an idle or a busy dashboard no longer rebuilds an unchanged footer."""

    _shown: object = None

    def _keys(self) -> tuple[Any, ...]:
        """What ``compose`` would show: every binding shown, enabled or not, its tooltip
        (the app's ``ENABLE_COMMAND_PALETTE`` is a class constant)."""
        if not self._bindings_ready:
            return ()
        keys = tuple(
            (binding, enabled, tooltip)
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        )
        return (keys, self.show_command_palette)

    async def recompose(self) -> None:
        if not self.is_attached or self._pruning:
            return
        keys = self._keys()
        if keys == self._shown:
            return
        self._shown = keys
        await super().recompose()
