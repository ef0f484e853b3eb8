"""The bar at the top of every screen: the database, a live indicator, runs per status."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from nanoagent_core.paths import display_location
from nanoagent_core.status import ShownStatus
from nanoagent_tui.formatting import status_text
from nanoagent_tui.live import Health

__all__ = ["BarState", "TopBar", "counts_text", "live_text"]


@dataclass(frozen=True)
class BarState:
    location: str
    health: Health
    message: str = ""
    waited: float | None = None  #: seconds spent waiting for a busy database
    counts: tuple[tuple[str, int], ...] = ()
    view: str = ""  #: what the list shows (filter, sort, window)


def live_text(state: BarState) -> Text:
    health = state.health
    if health is Health.LIVE:
        return Text("● live", style="bold green")
    if health is Health.WAITING:
        reason = state.message.removeprefix(f"{display_location(state.location)}: ")
        waited = f" {int(state.waited)}s" if state.waited is not None else ""
        return Text(f"◌ waiting{waited}: {reason}", style="bold yellow")
    if health is Health.MISSING:
        return Text("○ no database yet", style="bright_black")
    if health is Health.BROKEN:
        return Text("✖ cannot read the database", style="bold red")
    return Text("… opening", style="bright_black")


class TopBar(Static):
    DEFAULT_CSS = """
    TopBar {
        height: 2;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._state: tuple[BarState, int] | None = None

    def on_resize(self) -> None:
        """Follow a resize at once (the screen may have drawn the bar before it was laid out
        at the new width)."""
        if self._state is not None:
            self.show(self._state[0])

    def show(self, state: BarState) -> None:
        width = self.size.width
        if (state, width) == self._state:
            return
        self._state = (state, width)
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        title = Text.assemble(("nanoagent ", "bold"), (display_location(state.location), "cyan"))
        right = Text(f"{state.view}   " if state.view else "", style="bright_black")
        right.append_text(live_text(state))
        grid.add_row(title, right)
        grid.add_row(counts_text(state, compact=0 < width < 120), "")
        self.update(grid)


def counts_text(state: BarState, *, compact: bool = False) -> Text:
    """``✖ 1 crashed · ● 3 running · ✔ 40 completed``: every count labelled at every width;
    ``compact`` (below 120 columns): ``1 crashed 3 running 40 completed``, in the statuses'
    colours, so that all seven fit 80 columns. Crashed keeps its reversed colours."""
    counts = Text(no_wrap=True, overflow="ellipsis")
    for word, number in state.counts:
        if counts:
            counts.append(" " if compact else " · ", style="bright_black")
        label = status_text(word)
        glyph = label.plain.split()[0]
        if word == ShownStatus.CRASHED:
            shown = f"{number} {word}" if compact else f" {glyph} {number} {word} "
            counts.append(shown, style=label.style)
            continue
        if compact:
            counts.append(f"{number} ", style="bold")
            counts.append(word, style=label.style)
            continue
        counts.append(glyph, style=label.style)
        counts.append(f" {number} ", style="bold")
        counts.append(word, style=label.style)
    if not state.counts and state.health is Health.LIVE:
        counts.append("no runs", style="bright_black")
    return counts
