"""Keys typed ahead of a screen: when they were typed, compared to when a screen showed.

Every Textual event carries the moment it was made (``Message.time``, Textual's monotonic
clock). A key made before a dialog was on screen was meant for what was there before it:
a confirmation ignores it, and the new-run form types it into its first field.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

from textual import events
from textual._time import get_time  # pyright: ignore[reportPrivateUsage]
from textual.screen import Screen

__all__ = ["ShownClock", "TypedAhead", "now"]


@runtime_checkable
class TypedAhead(Protocol):
    """A screen that knows which keys were typed before it showed what they act on."""

    def typed_ahead(self, event: events.Key) -> bool: ...


def now() -> float:
    """The clock of ``Message.time``."""
    return get_time()


class ShownClock:
    """When a screen was first drawn (infinite until then): call :meth:`start` on mount."""

    def __init__(self) -> None:
        self.shown_at = math.inf

    def start(self, screen: Screen[Any]) -> None:
        screen.call_after_refresh(self._shown)

    def _shown(self) -> None:
        self.shown_at = now()

    def typed_before(self, event: events.Key) -> bool:
        """True for a key made before the screen was on screen."""
        return event.time < self.shown_at
