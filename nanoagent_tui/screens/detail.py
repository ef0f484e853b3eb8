"""The detail screen of one run: what it is, where it is, its tasks and its events, live."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, RichLog, Static

from nanoagent_core.conversation import Usage, usage_by_task
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import Event, EventKind, RunState
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus
from nanoagent_tui.formatting import in_flight, task_row
from nanoagent_tui.journal import fingerprint, read_calls, read_journal
from nanoagent_tui.live import Detail, Update
from nanoagent_tui.screens.approval import ApprovalPanel, DenyScreen
from nanoagent_tui.screens.base import ACTION_BINDINGS, LiveScreen
from nanoagent_tui.screens.conversation import ConversationScreen
from nanoagent_tui.screens.detail_parts import (
    InfoGrid,
    crash_line,
    duration_bars,
    durations_text,
    event_line,
    failure_text,
    phase_strip,
    task_result,
)
from nanoagent_tui.screens.usage_parts import calls_subtitle, tasks_title, with_task_usage
from nanoagent_tui.widgets.footer import KeyFooter
from nanoagent_tui.widgets.keyed_table import KeyedTable
from nanoagent_tui.widgets.run_columns import task_columns
from nanoagent_tui.widgets.top_bar import TopBar

__all__ = ["DetailScreen"]


class DurationBars(Static):
    """The durations as bars, drawn for the widget's own size and again whenever that size
    changes (the label above it grows a line once a task has finished)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._seconds: list[float] = []

    def show(self, seconds: list[float]) -> None:
        self._seconds = list(seconds)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = max(1, self.size.width or 20)
        height = max(1, min(5, self.size.height or 3))
        self.update(duration_bars(self._seconds, width, height))


class DetailScreen(LiveScreen):
    AUTO_FOCUS = "#tasks"
    CSS_PATH = Path(__file__).with_name("detail.tcss")

    BINDINGS = [
        Binding("escape", "back", "Back", id="back", tooltip="Back to the runs"),
        *ACTION_BINDINGS,
        Binding("slash", "search", "Search", id="search", tooltip="Search the events"),
        Binding("left_square_bracket", "step_run(-1)", "Prev run", id="prev_run"),
        Binding("right_square_bracket", "step_run(1)", "Next run", id="next_run"),
        Binding("y", "approve", "Approve", id="approve", tooltip="Approve the pending request"),
        Binding("d", "deny", "Deny", id="deny", tooltip="Deny the pending request (asks why)"),
        # in the footer only where the run has a journaled plan or reflection (check_action)
        Binding("p", "plan", "Plan", id="plan", tooltip="The plan and reflections"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.detail: Detail | None = None
        self.last_event = 0  #: the id of the last event shown
        self.durations: list[float] = []  #: seconds of each finished task, oldest first
        self._shown: tuple[object, ...] = ()
        self._result_key: tuple[object, ...] | None = None
        self._placed_cursor = False
        self._lines: list[Text] = []  #: every line of the log (events, crashes)
        self._unseen = 0  #: lines added while the reader was scrolled up
        self._crash_seen: tuple[object, ...] | None = None  #: the crash already in the log
        self._needle = ""  #: what the log is searched for
        self._wrapped_at = 0  #: the log width its lines were wrapped for
        self.usage: dict[str, Usage] = {}  #: each task's ledger, from the journal
        self.calls_usage: Usage | None = None  #: the plan's and reflections', from the journal
        self._journal_seen: tuple[object, ...] | None = None
        #: what the footer was last told resume and abort allow (app.check_action)
        self._allowed: tuple[bool | None, ...] = ()

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Static(Text(f"Loading {visible(self.run_id)}…"), id="loading")
        with Vertical(id="body"):
            yield Static(id="info")
            yield Static(id="phases")
            yield Static(id="failure")
            yield ApprovalPanel(id="approval")
            with Horizontal(id="middle"):
                yield KeyedTable(id="tasks")
                with VerticalScroll(id="result-box"):
                    yield Static(id="result")
            with Horizontal(id="bottom"):
                with Vertical(id="events-box"):
                    yield Input(placeholder="search the events (escape: all)", id="search")
                    yield RichLog(
                        id="events", max_lines=2000, wrap=True, min_width=16, auto_scroll=False
                    )
                with Vertical(id="durations"):
                    yield Static(id="durations-label")
                    yield DurationBars(id="spark")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#middle").border_title = "tasks"
        self.query_one("#events", RichLog).border_title = "events"
        self.query_one("#durations").border_title = "task durations"
        self.query_one("#search", Input).cursor_blink = self.dash.animated
        if self.dash.live.watched == self.run_id:
            # Another detail screen of this run is closing: load the history again for
            # this one, whose log is empty.
            self.dash.live.watch(self.run_id)
            self.dash.request_poll()
        self.dash.watch_top_detail()
        self._refresh_bar()

    def on_unmount(self) -> None:
        self.dash.watch_top_detail()

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_class("shown") or self._needle:
            search.value = ""
            search.remove_class("shown")
            self._search("")
            self.query_one("#tasks").focus()
            return
        self.dismiss()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.add_class("shown")
        search.focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self._search(event.value.strip())

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#search", Input).remove_class("shown")
        self.query_one("#events", RichLog).focus()

    def action_step_run(self, step: int) -> None:
        """The previous (-1) or next (1) run of the runs list, in its order."""
        from nanoagent_tui.screens.runs import RunsScreen

        lists = [s for s in self.dash.screen_stack if isinstance(s, RunsScreen)]
        if not lists:
            return
        table = lists[0].table
        keys = table.keys
        if self.run_id not in keys:
            return
        at = keys.index(self.run_id) + step
        if not 0 <= at < len(keys):
            self.dash.say("No more runs this way.", severity="information", timeout=2)
            return
        table.move_to(keys[at])
        self.dash.switch_screen(DetailScreen(keys[at]))  # pyright: ignore[reportUnknownMemberType]

    def selected_run(self) -> RunState | None:
        return None if self.detail is None else self.detail.run

    # -- approvals -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "deny"):
            # shown only while a request waits (hidden otherwise, not dimmed)
            return self.query_one(ApprovalPanel).request is not None
        if action == "plan":
            return self.calls_usage is not None and self.calls_usage.attempts > 0
        return True

    def typed_ahead(self, event: events.Key) -> bool:
        """``y`` and ``d`` count only once the request they decide is on screen (the app
        drops them otherwise, wherever they went first)."""
        return event.key in ("y", "d") and self.query_one(ApprovalPanel).typed_before(event)

    def on_key(self, event: events.Key) -> None:
        if self.typed_ahead(event):
            event.stop()
            event.prevent_default()

    def action_approve(self) -> None:
        request = self.query_one(ApprovalPanel).request
        if request is None:
            self.dash.say("Nothing waits for approval here.", severity="warning", timeout=3)
            return
        self.dash.decide(request, approve=True)

    def action_deny(self) -> None:
        request = self.query_one(ApprovalPanel).request
        if request is None:
            self.dash.say("Nothing waits for approval here.", severity="warning", timeout=3)
            return

        def answered(reason: str | None) -> None:
            if reason is not None:
                self.dash.decide(request, approve=False, reason=reason or None)

        self.dash.push_screen(DenyScreen(request), answered)

    # -- live ------------------------------------------------------------------------------

    def on_live(self, update: Update) -> None:
        mine_loaded = update.watched == self.run_id
        if mine_loaded and update.history is not None:
            self._reset_events(update.history)
        if mine_loaded and update.detail is not None:
            self.detail = update.detail
            self.add_class("loaded")
        elif mine_loaded and update.history is not None and self.detail is None:
            self.query_one("#loading", Static).update(
                Text(f"No run {visible(self.run_id)} in this database.")
            )
        mine = [e for e in update.events if e.run_id == self.run_id and e.id > self.last_event]
        if mine:
            self._add_events(mine)
        self._draw()

    def on_tick(self) -> None:
        self._draw()
        self._rewrap()
        if self._unseen:
            self._hint()

    def on_resize(self) -> None:
        self.set_class(self.size.height < 36, "short")
        self._shown = ()
        self._draw()
        self.call_after_refresh(self._draw_durations)
        self.call_after_refresh(self._rewrap)

    # -- drawing ---------------------------------------------------------------------------

    def _refresh_bar(self) -> None:
        self.query_one(TopBar).show(self.bar_state(f"run {self.run_id}"))

    def _draw(self) -> None:
        self._refresh_bar()
        detail = self.detail
        if detail is None:
            return
        run = detail.run
        now = self.dash.clock()
        word = self.dash.live.word(run, now)
        width = self.size.width
        shown = (detail, word, width, now.replace(microsecond=0))
        if shown == self._shown:
            return
        self._shown = shown
        self._log_crash(run, word, now)
        allowed = tuple(self.dash.check_action(action, ()) for action in ("resume", "abort"))
        if allowed != self._allowed:  # the footer dims r and a for a run they cannot apply to
            self._allowed = allowed
            self.refresh_bindings()
        short = self.has_class("short")
        self.query_one("#info", Static).update(InfoGrid(run, word, now, short=short))
        self.query_one("#phases", Static).update(phase_strip(run, word, width))
        failure = failure_text(run, word, detail.tasks)
        box = self.query_one("#failure", Static)
        box.set_class(failure is not None, "shown")
        if failure is not None:
            box.update(failure)
        self.query_one(ApprovalPanel).show_request(detail.pending, width, short)
        self.refresh_bindings()
        self._draw_tasks(detail)
        self.query_one("#middle").border_title = tasks_title(run)
        seen = fingerprint(run, detail.tasks)
        if run.requests and seen != self._journal_seen:
            self._journal_seen = seen
            self._load_usage()

    @work(group="usage", exclusive=True, exit_on_error=False)
    async def _load_usage(self) -> None:
        try:
            attempts = await read_journal(self.dash.location, self.run_id)
            calls = await read_calls(self.dash.location, self.run_id)
        except NanoagentError:
            self._journal_seen = None  # read again at the next change
            return
        self.usage = usage_by_task(attempts)
        self.calls_usage = sum((Usage.of(c) for c in calls), Usage())
        self.query_one("#middle").border_subtitle = calls_subtitle(self.calls_usage)
        self.refresh_bindings()  # the footer's "p Plan"
        self._result_key = None
        self._show_result(self.query_one("#tasks", KeyedTable).cursor_key)

    def _draw_tasks(self, detail: Detail) -> None:
        table = self.query_one("#tasks", KeyedTable)
        flying = in_flight(detail.run)
        table.set_columns(task_columns(max(40, table.size.width or self.size.width * 2 // 3)))
        table.sync([(task.id, task_row(task, flying)) for task in detail.tasks])
        if not self._placed_cursor and detail.tasks:
            self._placed_cursor = True
            failing = [t.id for t in detail.tasks if t.status.value == "failed"]
            target = flying or (failing[0] if failing else None)
            if target is not None:
                table.move_to(target)
        self._show_result(table.cursor_key)

    @on(DataTable.RowHighlighted, "#tasks")
    def _task_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_result(event.row_key.value)

    def action_plan(self) -> None:
        """The run's plan and reflections: the planner's and reflector's conversations."""
        detail = self.detail
        seen = None if detail is None else fingerprint(detail.run, detail.tasks)
        self.dash.push_screen(ConversationScreen(self.run_id, None, seen=seen))

    @on(DataTable.RowSelected, "#tasks")
    def _task_selected(self, event: DataTable.RowSelected) -> None:
        detail = self.detail
        if detail is None:
            return
        task = next((t for t in detail.tasks if t.id == event.row_key.value), None)
        if task is not None:
            seen = fingerprint(detail.run, detail.tasks)
            self.dash.push_screen(ConversationScreen(self.run_id, task, seen=seen))

    def _show_result(self, task_id: str | None) -> None:
        detail = self.detail
        if detail is None:
            return
        task = next((t for t in detail.tasks if t.id == task_id), None)
        usage = self.usage.get(task_id or "")
        key = (task, detail.results.get(task_id or ""), in_flight(detail.run), usage)
        if key == self._result_key:
            return
        self._result_key = key
        result = task_result(task, detail.results, in_flight(detail.run))
        self.query_one("#result", Static).update(with_task_usage(result, usage))

    def _reset_events(self, history: tuple[Event, ...]) -> None:
        log = self.query_one("#events", RichLog)
        log.clear()
        self._lines = []
        self._unseen = 0
        self._crash_seen = None
        self.durations = []
        self.last_event = 0
        self._add_events(list(history))

    def _add_events(self, events: list[Event]) -> None:
        if not events:
            return
        lines = [event_line(event) for event in events]
        for event in events:
            if event.kind == EventKind.TASK_DONE and isinstance(
                event.data.get("seconds"), int | float
            ):
                self.durations.append(float(event.data["seconds"]))
        self.last_event = events[-1].id
        self._add_lines(lines)
        self._draw_durations()

    def _draw_durations(self) -> None:
        self.query_one("#durations-label", Static).update(durations_text(self.durations))
        self.query_one("#spark", DurationBars).show(self.durations)

    def _add_lines(self, lines: list[Text]) -> None:
        """Lines into the log. It follows the tail only while the reader is at the bottom;
        scrolled up, the reader keeps their place and the title counts the new lines."""
        self._lines = (self._lines + lines)[-2000:]
        log = self.query_one("#events", RichLog)
        shown = [line for line in lines if self._matches(line)]
        if not shown:
            return
        following = log.is_vertical_scroll_end or log.max_scroll_y == 0
        width = self._log_width()
        for line in shown:
            log.write(line, width=width, scroll_end=following)
        self._wrapped_at = width
        self.call_after_refresh(self._rewrap)
        if not following:
            self._unseen += len(shown)
        self._hint()

    def _hint(self) -> None:
        log = self.query_one("#events", RichLog)
        if self._unseen and not log.is_vertical_scroll_end:
            log.border_subtitle = f"{self._unseen} new events ↓ (end)"
        else:
            self._unseen = 0
            log.border_subtitle = ""

    def _matches(self, line: Text) -> bool:
        return not self._needle or self._needle.casefold() in line.plain.casefold()

    def _search(self, needle: str) -> None:
        """Show only the log lines holding ``needle`` (all of them for an empty one), with
        it highlighted."""
        self._needle = needle
        log = self.query_one("#events", RichLog)
        log.clear()
        self._unseen = 0
        matching = [line for line in self._lines if self._matches(line)]
        self._wrapped_at = self._log_width()
        for line in matching:
            if needle:
                line = line.copy()
                line.highlight_words([needle], style="black on yellow", case_sensitive=False)
            log.write(line, scroll_end=True)
        log.border_title = f"events matching {needle!r}: {len(matching)}" if needle else "events"
        self._hint()

    def _log_width(self) -> int:
        return max(16, self.query_one("#events", RichLog).scrollable_content_region.width)

    def _rewrap(self) -> None:
        """Wrap the log's lines again for its width (lines are wrapped as they are written:
        a log written before its layout, or resized, would cut them)."""
        if self._lines and self._log_width() != self._wrapped_at:
            self._search(self._needle)

    def _log_crash(self, run: RunState, word: str, now: datetime) -> None:
        """A crash the dashboard detects goes into the log once, as a line."""
        if word != ShownStatus.CRASHED:
            return
        seen = (run.epoch, run.updated_at, run.owner)
        if seen == self._crash_seen:
            return
        self._crash_seen = seen
        self._add_lines([crash_line(run, now)])
