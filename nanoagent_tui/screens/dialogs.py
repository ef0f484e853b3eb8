"""Small modal screens: the confirmation before an abort, and the help."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from nanoagent_core.status import ShownStatus
from nanoagent_tui.formatting import ABORTING, clip, status_text
from nanoagent_tui.widgets.typeahead import ShownClock

__all__ = ["ConfirmScreen", "HelpScreen"]


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no: y / enter on Yes, n / escape.

    A key typed before the dialog was drawn is ignored: it was meant for the screen below
    (the ``a`` and ``y`` of a word typed fast must not confirm an abort)."""

    CSS_PATH = Path(__file__).with_name("dialogs.tcss")

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="yes"),
        Binding("n", "answer(False)", "No", id="no"),
        Binding("escape", "answer(False)", "Cancel", id="cancel", show=False),
    ]

    def __init__(self, question: str, explain: str = "", *, goal: str = "") -> None:
        super().__init__()
        self.question = question
        self.explain = explain
        self.goal = goal  #: the run's goal, named under the question
        self.shown = ShownClock()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="question", markup=False)
            if self.goal:
                yield Static(clip(self.goal, 300), id="goal", markup=False)
            if self.explain:
                yield Static(self.explain, id="explain", markup=False)
            with Horizontal():
                yield Button("No (n)", id="no")
                yield Button("Yes (y)", id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()
        self.shown.start(self)

    def on_key(self, event: events.Key) -> None:
        if self.shown.typed_before(event):
            event.stop()
            event.prevent_default()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")


_KEYS = (
    ("enter", "open the selected run's detail; in it, the selected task's conversation"),
    ("escape", "back to the runs / clear the filter / close a dialog"),
    ("↑ ↓  j k", "move in a list (runs, tasks)"),
    ("pgup pgdn", "a page up or down"),
    ("g home  G end", "first / last row"),
    ("r", "resume the selected run (crashed, interrupted, paused, failed or aborted)"),
    ("a", "abort the selected run (asks first)"),
    ("n", "start a new run"),
    ("c", "copy the selected run's id"),
    ("w", "the next run that needs a person (crashed, failed, paused)"),
    ("y  d", "detail of a run waiting for approval: approve / deny (asks a reason)"),
    ("/", "runs: filter by part of the id or goal; detail: search the events"),
    ("f  F", "show one status only: the next / previous status some run has"),
    ("s  S", "sort by the next column / reverse (or click a column's header)"),
    ("[  ]", "detail: the previous / next run of the list"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit; workers keep running"),
)

_STATUSES = (
    (ShownStatus.RUNNING.value, "a live worker holds the run"),
    (ABORTING, "abort requested; the worker stops at its next heartbeat"),
    (ShownStatus.CRASHED.value, "its worker died or its lease ran out: press r"),
    (ShownStatus.INTERRUPTED.value, "stopped by a signal; resumable"),
    (ShownStatus.FAILED.value, "a task failed every attempt; resumable"),
    (ShownStatus.ABORTED.value, "stopped on request; resumable"),
    (ShownStatus.PAUSED.value, "waits at a checkpoint (its budget, an approval); resumable"),
    (ShownStatus.COMPLETED.value, "finished"),
    (ShownStatus.DAMAGED.value, "its stored row cannot be read whole; nothing acts on it"),
)


def help_text() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(Text("Keys", style="bold underline"), "")
    for key, what in _KEYS:
        grid.add_row(Text(key, style="bold cyan"), what)
    grid.add_row("", "")
    grid.add_row(Text("Statuses", style="bold underline"), "")
    for word, what in _STATUSES:
        grid.add_row(status_text(word), what)
    grid.add_row("", "")
    grid.add_row(
        "",
        Text(
            "The dashboard updates by itself. It writes nothing but abort requests, resume "
            "claims and the runs you start.",
            style="bright_black",
        ),
    )
    return grid


class HelpScreen(ModalScreen[None]):
    CSS_PATH = Path(__file__).with_name("dialogs.tcss")

    BINDINGS = [
        Binding("escape", "close", "Close", id="close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_text())

    def action_close(self) -> None:
        self.dismiss()
