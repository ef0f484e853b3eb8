"""What the runs screen and the detail screen share: the live hooks and the common keys.

Live data reaches a screen only as a message, never as a direct call: the app publishes each
poll's update and each tick on its signals (``DashboardApp.polled``, ``DashboardApp.ticked``);
a live screen subscribes once mounted and turns them into its own messages
(:meth:`LiveScreen.deliver`, :meth:`LiveScreen.tick`). Textual handles a screen's messages
only after it composed and mounted its widgets, in the order they were posted, so a poll
never queries widgets that are not there yet (that was a ``NoMatches`` crash of the
dashboard); a screen reads what was polled before it mounted from the live data itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import events, on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

from nanoagent_core.models import RunState
from nanoagent_tui.live import Update
from nanoagent_tui.widgets.top_bar import BarState

if TYPE_CHECKING:
    from nanoagent_tui.app import DashboardApp

__all__ = ["ACTION_BINDINGS", "LiveScreen"]

#: The run actions, the same on both screens (and in the command palette). ``r``, ``a`` and
#: ``n`` are priority bindings: the app acts on them as the key arrives, before it hands the
#: next key on, so a key typed right after them reaches the dialog they open (which knows
#: it was typed before it was shown) rather than the list below it. While a text box has the
#: focus they are skipped (the key is typed into the box).
ACTION_BINDINGS: list[BindingType] = [
    Binding(
        "r",
        "app.resume",
        "Resume",
        id="resume",
        priority=True,
        tooltip="Resume the selected run in a new background worker "
        "(crashed, interrupted, paused, failed or aborted runs)",
    ),
    Binding(
        "a",
        "app.abort",
        "Abort",
        id="abort",
        priority=True,
        tooltip="Abort the selected run (asks first)",
    ),
    Binding("n", "app.new_run", "New run", id="new_run", tooltip="Start a new run", priority=True),
    Binding("c", "app.copy_id", "Copy id", id="copy_id", tooltip="Copy the run's id"),
    Binding(
        "w",
        "app.next_needing",
        "Needs you",
        id="next_needing",
        show=False,
        tooltip="The next run that needs a person (crashed, failed, paused)",
    ),
    Binding("question_mark", "app.help", "Help", id="help", tooltip="Keys and statuses"),
    Binding("q", "app.quit", "Quit", id="quit", tooltip="Quit (workers keep running)"),
]


class LiveScreen(Screen[None]):
    """A screen that shows live data: told of every poll's update and of every tick."""

    class Polled(Message, bubble=False):
        """A poll found something."""

        def __init__(self, update: Update) -> None:
            super().__init__()
            self.update = update

    class Ticked(Message, bubble=False):
        """Time moved on (statuses and ages); ticks not handled yet count as one."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LiveScreen.Ticked)

    @on(events.Mount)
    def _subscribe(self) -> None:
        """Told of every poll's update; of ticks only while on top."""
        self.dash.polled.subscribe(self, self._polled, immediate=True)
        self.dash.ticked.subscribe(self, self._ticked, immediate=True)

    def _polled(self, update: Update) -> None:
        # a screen just popped stays subscribed until it is unmounted: its widgets are
        # going, so nothing more is posted to it
        if self in self.dash.screen_stack:
            self.deliver(update)

    def _ticked(self, _: None) -> None:
        if self.is_current:
            self.tick()

    def deliver(self, update: Update) -> None:
        """Hand ``update`` to the screen: ``on_live`` runs once the screen is mounted."""
        self.post_message(self.Polled(update))

    def tick(self) -> None:
        """``on_tick`` runs once the screen is mounted (and not after it is gone)."""
        self.post_message(self.Ticked())

    def on_live_screen_polled(self, message: Polled) -> None:
        with self.dash.batch_update():
            self.on_live(message.update)

    def on_live_screen_ticked(self, message: Ticked) -> None:
        with self.dash.batch_update():
            self.on_tick()

    @property
    def dash(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    def selected_run(self) -> RunState | None:
        """The run the actions apply to."""
        return None

    def on_live(self, update: Update) -> None:
        """A poll found something (told to every live screen, whichever is on top; only
        ever after the screen is mounted)."""

    def on_tick(self) -> None:
        """About twice a second while this screen is on top: statuses and ages move on
        (only ever after the screen is mounted)."""

    def bar_state(self, view: str = "") -> BarState:
        return self.dash.bar_state(view)
