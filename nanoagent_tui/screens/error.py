"""The error screen: the database cannot be shown (not nanoagent's, damaged, too new)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Static

from nanoagent_core.paths import display_location
from nanoagent_core.safetext import visible
from nanoagent_tui.widgets.footer import KeyFooter

if TYPE_CHECKING:
    from nanoagent_tui.app import DashboardApp

__all__ = ["ErrorScreen", "error_text"]


def error_text(location: str, message: str) -> Text:
    """The error screen's text; the message may quote stored text (escaped here)."""
    location, message = visible(location), visible(message, lines=True)
    text = Text()
    text.append("This database cannot be shown\n\n", style="bold red")
    text.append(message + "\n\n", style="bold")
    text.append(
        "The dashboard wrote nothing to it. Check the path (--db or NANOAGENT_DB), or start "
        "a new database with a first run, e.g.\n\n"
    )
    text.append(f'  nanoagent run "a goal" --db {display_location(location)}.new', style="cyan")
    text.append("\n\nr tries again; q quits.", style="bright_black")
    return text


class ErrorScreen(Screen[None]):
    CSS_PATH = Path(__file__).with_name("error.tcss")

    BINDINGS = [
        Binding("r", "retry", "Retry", id="retry", tooltip="Try to open the database again"),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]

    def __init__(self, location: str, message: str) -> None:
        super().__init__()
        self.location = location
        self.message = message

    def compose(self) -> ComposeResult:
        with Center(), Vertical():
            yield Static(error_text(self.location, self.message), id="error")
        yield KeyFooter()

    def action_retry(self) -> None:
        cast("DashboardApp", self.app).retry()
