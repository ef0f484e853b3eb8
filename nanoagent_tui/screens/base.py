"""What the runs screen and the detail screen share: the live hooks and the common keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen

from nanoagent_core.models import RunState
from nanoagent_tui.live import Update
from nanoagent_tui.widgets.top_bar import BarState

if TYPE_CHECKING:
    from nanoagent_tui.app import DashboardApp

__all__ = ["ACTION_BINDINGS", "LiveScreen"]

#: The run actions, the same on both screens (and in the command palette).
ACTION_BINDINGS: list[BindingType] = [
    Binding(
        "r",
        "app.resume",
        "Resume",
        id="resume",
        tooltip="Resume the selected run in a new background worker "
        "(crashed, interrupted, failed or aborted runs)",
    ),
    Binding(
        "a",
        "app.abort",
        "Abort",
        id="abort",
        tooltip="Abort the selected run (asks first)",
    ),
    Binding("n", "app.new_run", "New run", id="new_run", tooltip="Start a new run"),
    Binding("question_mark", "app.help", "Help", id="help", tooltip="Keys and statuses"),
    Binding("q", "app.quit", "Quit", id="quit", tooltip="Quit (workers keep running)"),
]


class LiveScreen(Screen[None]):
    """A screen that shows live data: told of every poll's update and of every tick."""

    @property
    def dash(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    def selected_run(self) -> RunState | None:
        """The run the actions apply to."""
        return None

    def on_live(self, update: Update) -> None:
        """A poll found something (called whatever screen is on top)."""

    def on_tick(self) -> None:
        """About twice a second while this screen is on top: statuses and ages move on."""

    def bar_state(self, view: str = "") -> BarState:
        return self.dash.bar_state(view)
