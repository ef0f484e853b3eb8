"""The runs screen: every run, newest activity first, updated live."""

from __future__ import annotations

import bisect
import shlex
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from nanoagent_core.models import RunState
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus
from nanoagent_tui.formatting import ABORTING, RunRow, SortKey, ago, run_row, run_sort_key
from nanoagent_tui.live import Filter, Health, SortMode, Update
from nanoagent_tui.screens.base import ACTION_BINDINGS, LiveScreen
from nanoagent_tui.widgets.footer import KeyFooter
from nanoagent_tui.widgets.keyed_table import Column, KeyedTable
from nanoagent_tui.widgets.run_columns import run_columns
from nanoagent_tui.widgets.top_bar import TopBar

__all__ = ["STATUS_FILTERS", "RunsScreen", "empty_text"]

#: What ``f`` (forwards) and ``F`` (backwards) step through: every status, skipping those no
#: run has.
STATUS_FILTERS: tuple[str | None, ...] = (
    None,
    ShownStatus.DAMAGED.value,
    ShownStatus.CRASHED.value,
    ShownStatus.RUNNING.value,
    ABORTING,
    ShownStatus.PAUSED.value,
    ShownStatus.FAILED.value,
    ShownStatus.INTERRUPTED.value,
    ShownStatus.ABORTED.value,
    ShownStatus.COMPLETED.value,
)


def _how_to_start(location: str) -> Table:
    """The commands, with the ``--db`` this dashboard was opened with (so that their runs
    show here)."""
    db = f"--db {shlex.quote(location)} "
    grid = Table.grid(padding=(0, 3))
    grid.add_column(no_wrap=True, style="bold cyan")
    grid.add_column(style="bright_black")
    grid.add_row(f"nanoagent {db}demo", "demo runs in background workers, one crashed on purpose")
    grid.add_row(f'nanoagent {db}run "your goal"', "a run of your own")
    grid.add_row("n", "start a run from here")
    return grid


def empty_text(location: str, health: Health, message: str, flt: Filter) -> RenderableType:
    """What the runs screen says when it has no row to show."""
    location, message = visible(location), visible(message, lines=True)
    if health in (Health.STARTING, Health.BROKEN):
        return Text(f"Opening {location}…", style="bright_black")
    if health is Health.WAITING:
        return Text(f"Waiting for the database…\n\n{message}", style="yellow")
    if flt.active and health is Health.LIVE:
        what: list[str] = []
        if flt.text:
            what.append(f"text {flt.text!r}")
        if flt.status:
            what.append(f"status {flt.status}")
        return Text(
            f"No run matches {' and '.join(what)}.\n\n"
            "Press escape to clear the filter, f to change the status filter."
        )
    if health is Health.MISSING:
        head = Text.assemble("No database at ", (location, "cyan"), " yet.\n")
        tail = Text(
            "\nThis screen picks the database up as soon as it appears.", style="bright_black"
        )
    else:
        head = Text.assemble("No runs yet in ", (location, "cyan"), ".\n")
        tail = Text("")
    return Group(
        head, Text("Start something to watch:\n", style="bold"), _how_to_start(location), tail
    )


class RunsTable(KeyedTable):
    """The runs list: enter opens the selected run (shown in the footer)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Detail", id="open", tooltip="Open the selected run")
    ]


#: The sort of the app's sort modes (command palette): (column, descending).
SORTS: dict[SortMode, tuple[str, bool]] = {
    SortMode.ACTIVITY: ("activity", True),
    SortMode.STATUS: ("status", False),
    SortMode.CREATED: ("created", True),
}


class _Reversed:
    """A sort key that orders the other way round (for a descending column)."""

    __slots__ = ("key",)

    def __init__(self, key: SortKey) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return other.key < self.key


class RunsScreen(LiveScreen):
    AUTO_FOCUS = "#runs"
    CSS_PATH = Path(__file__).with_name("runs.tcss")

    BINDINGS = [
        *ACTION_BINDINGS,
        Binding("slash", "filter", "Filter", id="filter", tooltip="Filter runs by id or goal"),
        Binding("f", "step_status(1)", "Status", id="status", tooltip="Show one status only"),
        Binding("F", "step_status(-1)", "Status back", show=False, id="status_back"),
        Binding("s", "cycle_sort", "Sort", id="sort", tooltip="Sort by the next column"),
        Binding("S", "reverse_sort", "Reverse", show=False, id="reverse_sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter"),
    ]

    #: (column, descending): changing it redraws the list
    sort_by: reactive[tuple[str, bool]] = reactive(
        SORTS[SortMode.ACTIVITY], always_update=True, init=False
    )
    #: what the list shows: changing it re-reads the runs (the poll that follows redraws)
    run_filter: reactive[Filter] = reactive(Filter, always_update=True, init=False)

    def __init__(self) -> None:
        super().__init__()
        self._dirty = True
        self._width = 0
        self._typing: Timer | None = None
        self._shown = 0  #: rows the list shows
        self._aged: tuple[int, int, int] = (0, 0, 0)  #: (second, scroll, height) of the ages

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Input(placeholder="filter: part of a run id or goal", id="filter")
        yield RunsTable(id="runs")
        yield Static(id="empty")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).cursor_blink = self.dash.animated
        self.watch(self.dash, "sort", self._app_sorted, init=False)
        self.refresh_view()

    def _app_sorted(self, mode: SortMode) -> None:
        self.sort_by = SORTS[mode]

    def watch_sort_by(self) -> None:
        if self.is_mounted:
            self.refresh_view()

    def watch_run_filter(self, flt: Filter) -> None:
        self.dash.live.set_filter(flt)
        self.dash.request_poll()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#runs", KeyedTable)

    # -- live ------------------------------------------------------------------------------

    def on_live(self, update: Update) -> None:
        """A poll that changed some runs only judges, rebuilds and moves their rows; the
        whole view is drawn again after a reload, a change of health, or while hidden."""
        if not self.is_current:
            self._dirty = True  # drawn again when it is on top again
        elif (
            self._dirty
            or update.changed is None
            or update.reloaded
            or update.health_changed
            or not self._refresh_rows(update.changed)
        ):
            self.refresh_view()

    def _refresh_rows(self, changed: frozenset[str]) -> bool:
        """Bring the rows of the ``changed`` runs up to date and move them to their place in
        the sort order (a binary search among the rows shown, whose order holds: a row's sort
        key changes only with its run). False when that cannot be done (then redraw all)."""
        dash = self.dash
        live = dash.live
        runs, flt, now = live.runs, live.filter, dash.clock()
        table = self.table
        if not self._width or self._width != self.size.width:
            return False
        column, descending = self.sort_by
        own = run_sort_key(column)

        def place(key: str) -> SortKey | _Reversed:
            run = runs[key]
            at = own((run, live.word(run, now)))
            return _Reversed(at) if descending else at

        rows: list[tuple[str, RunRow]] = []
        for key in changed:
            run = runs.get(key)
            if run is not None and flt.matches(run, word := live.word(run, now)):
                rows.append((key, run_row(run, now, word)))
        order = [key for key in table.keys if key not in changed]
        if any(key not in runs for key in order):
            return False
        for key, _ in rows:
            bisect.insort(order, key, key=place)
        self._shown = len(order)
        table.patch(rows, order)
        self._after_rows(now)
        return True

    def on_tick(self) -> None:
        """Between polls only time moves: statuses change only with a poll (a run is called
        crashed once a poll confirmed it), so a tick updates the ages of the rows on screen,
        once per second of the clock or after a scroll, and only the cells whose text
        changed. That keeps an idle dashboard near zero CPU however many runs it lists."""
        if self._dirty:
            self.refresh_view()
            return
        dash = self.dash
        now = dash.clock()
        table = self.table
        aged = (int(now.timestamp()), round(table.scroll_y), table.size.height)
        if aged != self._aged:
            self._aged = aged
            runs = dash.live.runs
            rows: list[tuple[str, RunRow]] = []
            for key in table.in_view():
                run, old = runs.get(key), table.row(key)
                if run is not None and isinstance(old, RunRow):
                    rows.append((key, old._replace(activity=ago(now, run.updated_at))))
            table.update_rows(rows)
        self.query_one(TopBar).show(self.bar_state(self._view(self._shown)))

    def on_screen_resume(self) -> None:
        if self._dirty:
            self.refresh_view()

    def on_resize(self) -> None:
        self.refresh_view()
        table = self.table
        # once laid out at the new size: the cursor row back in sight
        self.call_after_refresh(
            lambda: table.move_cursor(row=table.cursor_row, animate=False, scroll=True)
        )

    def refresh_view(self) -> None:
        """Bring the table, the empty state and the bar up to date with the live data."""
        self._dirty = False
        dash = self.dash
        live = dash.live
        now = dash.clock()
        table = self.table
        if self.size.width:
            self._width = self.size.width
            table.set_columns(self._columns(self._width))
        visible = live.visible(now, dash.sort)
        column, descending = self.sort_by
        visible.sort(key=run_sort_key(column), reverse=descending)
        self._shown = len(visible)
        self._aged = (int(now.timestamp()), round(table.scroll_y), table.size.height)
        table.sync([(run.run_id, run_row(run, now, word)) for run, word in visible])
        self._after_rows(now)

    def _after_rows(self, now: datetime) -> None:
        """The selection asked for, the empty state and the bar, after the rows changed."""
        dash = self.dash
        live = dash.live
        if dash.pending_select and self.table.move_to(dash.pending_select):
            dash.pending_select = None
        empty = not self._shown
        self.set_class(empty, "empty")
        if empty:
            message = empty_text(live.location, live.health, live.message, live.filter)
            self.query_one("#empty", Static).update(message)
        self.query_one(TopBar).show(self.bar_state(self._view(self._shown)))
        self.refresh_bindings()  # what the selected run allows may have changed

    def _columns(self, width: int) -> list[Column]:
        """The columns for ``width``, the sorted one's header marked ▲ (ascending) or ▼."""
        column, descending = self.sort_by
        mark = " ▼" if descending else " ▲"
        return [
            replace(c, label=c.label + mark) if c.key == column else c for c in run_columns(width)
        ]

    def _view(self, shown: int) -> str:
        live = self.dash.live
        column, descending = self.sort_by
        name = next((c.label for c in run_columns(200) if c.key == column), column)
        parts = [f"sort: {name} {'▼' if descending else '▲'}"]
        if live.filter.status:
            parts.append(f"status: {live.filter.status}")
        if live.filter.text:
            parts.append(f"filter: {live.filter.text!r}")
        if live.truncated or live.filter.active:
            more = "+" if live.truncated else ""
            parts.append(f"showing {shown}{more} of {live.total:,}")
        return " · ".join(parts)

    # -- selection -------------------------------------------------------------------------

    def selected_run(self) -> RunState | None:
        key = self.table.cursor_key
        return None if key is None else self.dash.live.runs.get(key)

    @on(DataTable.RowHighlighted, "#runs")
    def _row_highlighted(self) -> None:
        self.refresh_bindings()  # r and a dim for a run they cannot apply to

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.dash.open_detail(run.run_id)

    # -- filter and sort -------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        live = self.dash.live
        if box.value or live.filter.active or box.has_class("shown"):
            box.value = ""
            box.remove_class("shown")
            self._filter_by(Filter())
        self.table.focus()

    def action_step_status(self, step: int) -> None:
        """The next (``step`` 1) or previous (-1) status some run has, then every status."""
        live = self.dash.live
        current = live.filter.status
        counts = live.shown_counts(self.dash.clock())
        options = [
            status
            for status in STATUS_FILTERS
            if status is None or counts.get(status) or status == current
        ]
        at = options.index(current) if current in options else 0
        self._filter_by(Filter(live.filter.text, options[(at + step) % len(options)]))

    def action_cycle_status(self) -> None:
        self.action_step_status(1)

    def action_cycle_sort(self) -> None:
        """Sort by the next column shown (each in its natural direction)."""
        keys = [c.key for c in run_columns(self._width or self.size.width)]
        column = self.sort_by[0]
        following = keys[(keys.index(column) + 1) % len(keys)] if column in keys else keys[0]
        self.sort_by = (following, following == "activity")

    def action_reverse_sort(self) -> None:
        column, descending = self.sort_by
        self.sort_by = (column, not descending)

    @on(DataTable.HeaderSelected, "#runs")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by its column; a second click reverses."""
        event.stop()
        column = str(event.column_key.value)
        current, descending = self.sort_by
        self.sort_by = (column, not descending if column == current else column == "activity")

    @on(Input.Changed, "#filter")
    def _typed(self, event: Input.Changed) -> None:
        if self._typing is not None:
            self._typing.stop()
        text = event.value.strip()
        self._typing = self.set_timer(
            0.15, lambda: self._filter_by(Filter(text, self.dash.live.filter.status))
        )

    @on(Input.Submitted, "#filter")
    def _submitted(self, event: Input.Submitted) -> None:
        self._filter_by(Filter(event.value.strip(), self.dash.live.filter.status))
        if not event.value.strip():
            self.query_one("#filter", Input).remove_class("shown")
        self.table.focus()

    def _filter_by(self, flt: Filter) -> None:
        self.run_filter = flt
