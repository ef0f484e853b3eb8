"""The runs screen: every run, newest activity first, updated live."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from nanoagent_core.models import RunState
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus
from nanoagent_tui.formatting import ABORTING, RunRow, ago, run_row
from nanoagent_tui.live import Filter, Health, Update
from nanoagent_tui.screens.base import ACTION_BINDINGS, LiveScreen
from nanoagent_tui.widgets.keyed_table import KeyedTable
from nanoagent_tui.widgets.run_columns import run_columns
from nanoagent_tui.widgets.top_bar import TopBar

__all__ = ["STATUS_FILTERS", "RunsScreen", "empty_text"]

#: What ``f`` steps through.
STATUS_FILTERS: tuple[str | None, ...] = (
    None,
    ShownStatus.CRASHED.value,
    ShownStatus.RUNNING.value,
    ABORTING,
    ShownStatus.FAILED.value,
    ShownStatus.INTERRUPTED.value,
    ShownStatus.ABORTED.value,
    ShownStatus.COMPLETED.value,
)


def _how_to_start() -> Table:
    grid = Table.grid(padding=(0, 3))
    grid.add_column(no_wrap=True, style="bold cyan")
    grid.add_column(style="bright_black")
    grid.add_row("nanoagent demo", "demo runs in background workers, one crashed on purpose")
    grid.add_row('nanoagent run "your goal"', "a run of your own")
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
    return Group(head, Text("Start something to watch:\n", style="bold"), _how_to_start(), tail)


class RunsScreen(LiveScreen):
    AUTO_FOCUS = "#runs"
    DEFAULT_CSS = """
    RunsScreen #filter { display: none; height: 3; margin: 0 1; }
    RunsScreen #filter.shown { display: block; }
    RunsScreen #runs { height: 1fr; }
    RunsScreen #empty { height: 1fr; padding: 2 4; display: none; }
    RunsScreen.empty #empty { display: block; }
    RunsScreen.empty #runs { display: none; }
    """

    BINDINGS = [
        Binding("enter", "open", "Detail", id="open", tooltip="Open the selected run"),
        *ACTION_BINDINGS,
        Binding("slash", "filter", "Filter", id="filter", tooltip="Filter runs by id or goal"),
        Binding("f", "cycle_status", "Status", id="status", tooltip="Show one status only"),
        Binding("s", "cycle_sort", "Sort", id="sort", tooltip="Sort by activity, status, age"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter"),
    ]

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
        yield KeyedTable(id="runs")
        yield Static(id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).cursor_blink = self.dash.animated
        self.refresh_view()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#runs", KeyedTable)

    # -- live ------------------------------------------------------------------------------

    def on_live(self, update: Update) -> None:
        if self.is_current:
            self.refresh_view()
        else:
            self._dirty = True  # drawn again when it is on top again

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

    def refresh_view(self) -> None:
        """Bring the table, the empty state and the bar up to date with the live data."""
        self._dirty = False
        dash = self.dash
        live = dash.live
        now = dash.clock()
        table = self.table
        if self.size.width and self.size.width != self._width:
            self._width = self.size.width
            table.set_columns(run_columns(self._width))
        visible = live.visible(now, dash.sort)
        self._shown = len(visible)
        self._aged = (int(now.timestamp()), round(table.scroll_y), table.size.height)
        table.sync([(run.run_id, run_row(run, now, word)) for run, word in visible])
        if dash.pending_select and table.move_to(dash.pending_select):
            dash.pending_select = None
        empty = not visible
        self.set_class(empty, "empty")
        if empty:
            message = empty_text(live.location, live.health, live.message, live.filter)
            self.query_one("#empty", Static).update(message)
        self.query_one(TopBar).show(self.bar_state(self._view(len(visible))))

    def _view(self, shown: int) -> str:
        live = self.dash.live
        parts = [f"sort: {self.dash.sort}"]
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
            self._set_filter(Filter())
        self.table.focus()

    def action_cycle_status(self) -> None:
        live = self.dash.live
        at = STATUS_FILTERS.index(live.filter.status) if live.filter.status in STATUS_FILTERS else 0
        status = STATUS_FILTERS[(at + 1) % len(STATUS_FILTERS)]
        self._set_filter(Filter(live.filter.text, status))

    def action_cycle_sort(self) -> None:
        self.dash.cycle_sort()
        self.refresh_view()

    @on(Input.Changed, "#filter")
    def _typed(self, event: Input.Changed) -> None:
        if self._typing is not None:
            self._typing.stop()
        text = event.value.strip()
        self._typing = self.set_timer(
            0.15, lambda: self._set_filter(Filter(text, self.dash.live.filter.status))
        )

    @on(Input.Submitted, "#filter")
    def _submitted(self, event: Input.Submitted) -> None:
        self._set_filter(Filter(event.value.strip(), self.dash.live.filter.status))
        if not event.value.strip():
            self.query_one("#filter", Input).remove_class("shown")
        self.table.focus()

    def _set_filter(self, flt: Filter) -> None:
        self.dash.live.set_filter(flt)
        self.dash.request_poll()
