"""The dashboard app: one poll loop feeding the screens, a ticker, and the run actions.

``run_dashboard(location)`` is what ``nanoagent`` and ``nanoagent tui`` call. Tests build a
:class:`DashboardApp` with a fixed clock and ``animate=False``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from textual import events
from textual.actions import SkipAction
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.signal import Signal
from textual.widgets import Input

from nanoagent_core.agents.registry import agent_names
from nanoagent_core.approvals import ApprovalRequest
from nanoagent_core.errors import NanoagentError
from nanoagent_core.launch import reap_workers
from nanoagent_core.models import RunState, utc_now
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus
from nanoagent_tui import operations
from nanoagent_tui.attention import Transitions, bell_enabled, next_needing
from nanoagent_tui.commands import RunCommands
from nanoagent_tui.live import Filter, Health, LiveData, SortMode, Update
from nanoagent_tui.screens.base import LiveScreen
from nanoagent_tui.screens.detail import DetailScreen
from nanoagent_tui.screens.dialogs import ConfirmScreen, HelpScreen
from nanoagent_tui.screens.error import ErrorScreen
from nanoagent_tui.screens.new_run import NewRunScreen
from nanoagent_tui.screens.runs import RunsScreen
from nanoagent_tui.widgets.top_bar import BarState
from nanoagent_tui.widgets.typeahead import TypedAhead

__all__ = ["DashboardApp", "run_dashboard"]

_SORTS = tuple(SortMode)


class DashboardApp(App[int]):
    """Watch the runs of one database live; resume, abort and start runs."""

    TITLE = "nanoagent"
    COMMANDS = App.COMMANDS | {RunCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="ctrl_quit"),
    ]
    #: absolute (here and in the screens): Textual reads a relative path from the file of
    #: the class in use, which for a subclass (the tests have some) is another directory
    CSS_PATH = Path(__file__).with_name("app.tcss")

    #: The app's sort mode (command palette); the runs screen follows it. Choosing the
    #: mode already chosen sorts by it again (after a click on another column's header).
    sort: reactive[SortMode] = reactive(SortMode.ACTIVITY, always_update=True, init=False)

    def __init__(
        self,
        location: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        animate: bool = True,
        poll_interval: float | None = None,
        tick_interval: float = 0.5,
        window: int = 500,
        live: LiveData | None = None,
        bell: bool | None = None,
    ) -> None:
        super().__init__()
        #: ring the terminal bell when a run comes to need a person (see attention.py)
        self.ring_bell = bell_enabled() if bell is None else bell
        self.transitions = Transitions()
        self.location = location
        self.clock = clock
        self.animated = animate
        if not animate:
            self.animation_level = "none"
        self._poll_interval = poll_interval
        self.tick_interval = tick_interval
        self.live = live or LiveData(location, window=window)
        self.runs = RunsScreen()  #: the runs list, at the bottom of the screen stack
        #: each poll's update, to every live screen
        self.polled: Signal[Update] = Signal(self, "polled")
        #: time moved on (statuses and ages), to the live screen on top
        self.ticked: Signal[None] = Signal(self, "ticked")
        self.pending_select: str | None = None  #: a run to put the cursor on once it shows
        self.polls = 0  #: polls done (tests wait on it)
        self.updates = 0  #: polls that found something
        self._wake = asyncio.Event()
        self._opened = False  #: the first load happened (the cursor was placed)

    @property
    def poll_interval(self) -> float:
        """Seconds between polls: the one given, else what the open store allows. A store
        that is told of changes (PostgreSQL's LISTEN/NOTIFY) makes an idle poll a local
        counter read, so polling often costs nothing; SQLite's idle poll is a query
        (``PRAGMA data_version``)."""
        if self._poll_interval is not None:
            return self._poll_interval
        return 0.02 if self.live.pushes_changes else 0.1

    # -- life ------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(self.runs)
        self.run_worker(self._poll_loop(), group="poll", exclusive=True, name="poll")
        self.set_interval(self.tick_interval, self._tick, name="tick")

    async def on_unmount(self) -> None:
        # Stop polling first: a query in flight finishes on the connection's thread, and the
        # close is queued after it.
        for worker in self.workers:
            if worker.group == "poll":
                worker.cancel()
        await self.live.close()

    async def _poll_loop(self) -> None:
        """Poll, show, wait: the next poll starts only after the last one is done."""
        while True:
            update = await self.live.poll(self.clock())
            self.polls += 1
            if update is not None:
                self.updates += 1
                self._dispatch(update)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    def request_poll(self) -> None:
        """Poll now rather than at the next interval (after a filter change or an action)."""
        self._wake.set()

    def _dispatch(self, update: Update) -> None:
        """Publish ``update`` to the live screens (each handles it as a message of its own,
        once its widgets are mounted)."""
        if self.live.health is Health.BROKEN:
            if not isinstance(self.screen, ErrorScreen):
                self.push_screen(ErrorScreen(self.location, self.live.message))
            return
        if update.reloaded and not self._opened:
            self._opened = True
            self.pending_select = self._first_crashed()
        self.polled.publish(update)
        self._notice()

    def on_key(self, event: events.Key) -> None:
        """A key reaches the app's bindings after it has gone to the focused widget of the
        screen that was on top when it was handled, which may no longer be on top: a key
        typed ahead must not act on the screen that has replaced it. A screen that says the
        key was typed before it was drawn (:class:`TypedAhead`) gets nothing."""
        screen = self.screen
        if isinstance(screen, TypedAhead) and screen.typed_ahead(event):
            event.prevent_default()
            event.stop()

    def _notice(self) -> None:
        """A run that has come to need a person: a notification, and the bell."""
        if not self._opened:
            return
        now = self.clock()
        live = self.live
        shown = [(run, live.word(run, now)) for run in live.runs.values()]
        for transition in self.transitions.observe(shown, now):
            self.say(transition.message(), title="Needs a person", severity="warning", timeout=10)
            if self.ring_bell:
                self.bell()

    def action_next_needing(self) -> None:
        """Move to the next run that needs a person (crashed, failed, paused)."""
        runs = next((s for s in self.screen_stack if isinstance(s, RunsScreen)), None)
        if runs is None:
            return
        table = runs.table
        now = self.clock()
        words = {run.run_id: self.live.word(run, now) for run in self.live.runs.values()}
        rows = [(key, words.get(key, "")) for key in table.keys]
        current = self._selected()
        target = next_needing(rows, None if current is None else current.run_id)
        if target is None:
            self.say("No run needs a person.", timeout=3)
            return
        table.move_to(target)
        if isinstance(self.screen, DetailScreen):
            self.switch_screen(DetailScreen(target))  # pyright: ignore[reportUnknownMemberType]

    def decide(self, request: ApprovalRequest, *, approve: bool, reason: str | None = None) -> None:
        """Decide the request shown (bound to its id and digest) and resume its run."""
        word = "Approve" if approve else "Deny"
        self._act(
            f"{word} {request.id}",
            operations.decide(
                self.location,
                request.run_id,
                request.id,
                request.digest,
                approve=approve,
                reason=reason,
            ),
        )

    def _tick(self) -> None:
        self._notice()
        reap_workers()
        if self.is_running:
            self.ticked.publish(None)

    def retry(self) -> None:
        """From the error screen: open the database again."""
        self.live = LiveData(self.location, window=self.live.window)
        if isinstance(self.screen, ErrorScreen):
            self.pop_screen()
        self.run_worker(self._poll_loop(), group="poll", exclusive=True, name="poll")

    # -- what the screens share ------------------------------------------------------------

    def bar_state(self, view: str) -> BarState:
        live = self.live
        return BarState(
            location=visible(self.location),
            health=live.health,
            message=visible(live.message),
            waited=live.waited(),
            counts=tuple(live.shown_counts(self.clock()).items()),
            view=view,
        )

    def cycle_sort(self) -> None:
        self.set_sort(_SORTS[(_SORTS.index(self.sort) + 1) % len(_SORTS)])

    def set_sort(self, mode: SortMode) -> None:
        self.sort = mode

    def filter_status(self, status: str | None) -> None:
        self.runs.run_filter = Filter(self.live.filter.text, status)

    def open_detail(self, run_id: str) -> None:
        self.push_screen(DetailScreen(run_id))

    def watch_top_detail(self) -> None:
        """Follow the run of the top-most detail screen (None when there is none).

        Decided from the screen stack whenever a detail screen mounts or unmounts, so that
        a detail screen closed while another opens (enter, escape, enter) cannot stop the
        new one's run being followed, whichever order Textual mounts and unmounts them in."""
        run_id = next(
            (s.run_id for s in reversed(self.screen_stack) if isinstance(s, DetailScreen)), None
        )
        if run_id != self.live.watched:
            self.live.watch(run_id)
            self.request_poll()

    def say(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
    ) -> None:
        """A notification whose text may hold stored text (run ids, hosts, errors): shown
        literally (no markup) and with control characters escaped."""
        self.notify(
            visible(message, lines=True),
            title=visible(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def _first_crashed(self) -> str | None:
        """On opening, the cursor starts on a crashed run if there is one: it is what needs a
        person (press r)."""
        for run, word in self.live.visible(self.clock(), self.sort):
            if word == ShownStatus.CRASHED:
                return run.run_id
        return None

    def _selected(self) -> RunState | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, LiveScreen):
                return screen.selected_run()
        return None

    # -- actions ---------------------------------------------------------------------------

    def _not_typing(self) -> None:
        """The run actions' keys are priority bindings: while a text box has the focus, the
        key is typed into it instead."""
        if isinstance(self.focused, Input):
            raise SkipAction()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer dims resume, abort and copy when they cannot apply to the selected run
        (the screens call ``refresh_bindings`` when the selection or its status changes);
        the command palette still runs them, and they say why not."""
        if action not in ("resume", "abort", "copy_id"):
            return True
        run = self._selected()
        if run is None:
            return None
        if action == "resume":
            return None if operations.why_not_resumable(run, self.clock()) else True
        if action == "abort":
            return None if operations.why_not_abortable(run, self.clock()) else True
        return True

    def action_copy_id(self) -> None:
        """Copy the selected run's id to the clipboard (the terminal's, through OSC 52)."""
        run = self._selected()
        if run is None:
            self.say("Select a run first.", severity="warning")
            return
        self.copy_to_clipboard(run.run_id)
        self.say(f"Copied {run.run_id}", title="Run id")

    def action_open(self) -> None:
        run = self._selected()
        if run is not None and not isinstance(self.screen, DetailScreen):
            self.open_detail(run.run_id)

    def action_filter(self) -> None:
        if self.runs in self.screen_stack:
            while self.screen is not self.runs:
                self.pop_screen()
            self.runs.action_filter()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_resume(self) -> None:
        self._not_typing()
        run = self._selected()
        if run is None:
            self.say("Select a run first.", severity="warning")
            return
        why = operations.why_not_resumable(run, self.clock())
        if why is not None:
            self.say(why, title="Nothing to resume", severity="warning")
            return
        self._act(f"Resume {run.run_id}", operations.resume(self.location, run.run_id))

    def action_abort(self) -> None:
        self._not_typing()
        run = self._selected()
        if run is None:
            self.say("Select a run first.", severity="warning")
            return
        why = operations.why_not_abortable(run, self.clock())
        if why is not None:
            self.say(why, title="Nothing to abort", severity="warning")
            return
        run_id = run.run_id

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(f"Abort {run_id}", operations.abort(self.location, run_id))

        self.push_screen(
            ConfirmScreen(
                f"Abort run {visible(run_id)}?",
                "A live worker stops at its next heartbeat and records where it stopped; "
                "a run with no live worker is aborted at once. It can be resumed later.",
                goal=run.goal,
            ),
            answered,
        )

    def action_new_run(self) -> None:
        self._not_typing()

        def started(run_id: str | None) -> None:
            if run_id is not None:
                self.pending_select = run_id
                # its row may be on screen already (it was stored before its worker claimed
                # it): move the cursor now, not at the next change
                if self.runs.is_mounted:
                    self.runs.refresh_view()
                self.request_poll()

        self.push_screen(NewRunScreen(agent_names()), started)

    async def start_run(self, run: RunState) -> str:
        """Store ``run`` and start its detached worker (the new-run form calls this)."""
        message = await operations.start(self.location, run)
        self.request_poll()
        return message

    def _act(self, title: str, action: Awaitable[str]) -> None:
        async def act() -> None:
            try:
                message = await action
            except (NanoagentError, OSError) as exc:
                self.say(str(exc), title=f"{title} failed", severity="error", timeout=8)
            else:
                self.say(message, title=title)
            self.request_poll()

        self.run_worker(act(), group="actions", name=title)


def run_dashboard(location: str) -> int:
    """Open the dashboard on ``location`` until the user quits; the exit status."""
    app = DashboardApp(location)
    app.run()
    return app.return_code or 0
