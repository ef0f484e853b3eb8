"""The conversation of one task: its journaled attempts, each with what was said (prompts,
instructions, the model's text, tool calls with their arguments and returns) and what it
spent. Opened from the detail screen with ``enter`` on a task; live while the run goes on.
Without a task: the run's plan and reflections (the planner's and reflector's journaled
calls), opened with ``p``.

The parts come decoded from the core (nanoagent_core.conversation), their text made
visible there already; here every text goes in as ``Text`` (never markup), wrapped to the
screen's width, in one scrollable column.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from nanoagent_core.conversation import (
    AttemptView,
    Part,
    Usage,
    attempt_views,
    call_views,
    usage_text,
)
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import Attempt, ModelCall, Task
from nanoagent_core.safetext import visible
from nanoagent_tui.journal import JournalOpener, fingerprint, read_calls, read_journal
from nanoagent_tui.live import Update
from nanoagent_tui.screens.base import LiveScreen
from nanoagent_tui.widgets.footer import KeyFooter
from nanoagent_tui.widgets.top_bar import TopBar

__all__ = ["ConversationScreen", "conversation_text"]

_STYLE = {
    "instructions": "bright_black",
    "system": "bright_black",
    "prompt": "bold cyan",
    "text": "bold green",
    "thinking": "italic bright_black",
    "tool-call": "bold yellow",
    "tool-return": "yellow",
    "retry": "bold red",
    "unreadable": "bold red",
    "other": "magenta",
}


def _part(part: Part) -> RenderableType:
    title = Text(part.title, style=_STYLE.get(part.kind, "bold"))
    body = Text(part.text or "(empty)", style="" if part.text else "bright_black")
    return Group(title, Padding(body, (0, 0, 0, 2)))  # the body indented, wrapped lines too


def _heading(view: AttemptView) -> Text:
    style = "bold green" if view.outcome == "done" else "bold red"
    heading = Text()
    heading.append(visible(view.label) if view.label else f"attempt {view.attempt}", style="bold")
    heading.append(f"  {visible(view.outcome)}", style=style)
    if view.model:
        heading.append(f"  model {visible(view.model)}", style="cyan")
    heading.append(f"  {usage_text(view.usage)}  {view.seconds:.2f} s", style="bright_black")
    return heading


def conversation_text(views: list[AttemptView], *, calls: bool = False) -> RenderableType:
    """Every attempt (or call), oldest first: a heading, then its parts in order."""
    if not views:
        what = "plan or reflection" if calls else "conversation"
        whose = "run" if calls else "task"
        return Text(
            f"No {what} journaled for this {whose} (its agent is not model-backed, or no "
            "call's outcome has committed yet).",
            style="bright_black",
        )
    blocks: list[RenderableType] = []
    for view in views:
        blocks.append(_heading(view))
        if not view.parts:
            blocks.append(Text("  (no messages)", style="bright_black"))
        for part in view.parts:
            blocks.append(_part(part))
        blocks.append(Text(""))
    return Group(*blocks)


class ConversationScreen(LiveScreen):
    """One task's conversation (``task`` None: the run's plan and reflections), read through
    the Viewer Protocol."""

    CSS_PATH = Path(__file__).with_name("conversation.tcss")

    AUTO_FOCUS = "#talk"
    BINDINGS = [
        Binding("escape", "back", "Back", id="back", tooltip="Back to the run"),
        Binding("home", "scroll('home')", "Top", id="top", show=False),
        Binding("end", "scroll('end')", "End", id="end"),
        Binding("q", "app.quit", "Quit", id="quit", tooltip="Quit (workers keep running)"),
    ]

    def __init__(
        self,
        run_id: str,
        task: Task | None,
        *,
        seen: tuple[object, ...] | None = None,
        opener: JournalOpener | None = None,
    ) -> None:
        """``seen``: the run's fingerprint (journal.fingerprint) as of the data the caller
        showed; the journal is read at mount and again whenever a poll finds it moved."""
        super().__init__()
        self.run_id = run_id
        self.task_info = task
        self.attempts: list[Attempt] | None = None  #: the journal as last read (None: not yet)
        self.calls: list[ModelCall] | None = None  #: the plan and reflections, as last read
        self._opener = opener
        self._seen = seen

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Static(self._task_line(None), id="task")
        with VerticalScroll(id="talk"):
            yield Static(Text("Loading the conversation…", style="bright_black"), id="parts")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(TopBar).show(self.bar_state(f"run {self.run_id} · conversation"))
        self._load()

    def action_back(self) -> None:
        self.dismiss()

    def action_scroll(self, where: str) -> None:
        talk = self.query_one("#talk", VerticalScroll)
        if where == "home":
            talk.scroll_home(animate=False)
        else:
            talk.scroll_end(animate=False)

    def on_live(self, update: Update) -> None:
        detail = update.detail
        if detail is None or update.watched != self.run_id:
            return
        shown = self.task_info
        task = next((t for t in detail.tasks if shown and t.id == shown.id), None)
        if task is not None:
            self.task_info = task
        seen = fingerprint(detail.run, detail.tasks)
        if seen != self._seen:
            self._seen = seen
            self._load()

    def on_tick(self) -> None:
        self.query_one(TopBar).show(self.bar_state(f"run {self.run_id} · conversation"))

    @work(group="journal", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        task = self.task_info
        try:
            if task is None:
                self.calls = await read_calls(self.dash.location, self.run_id, self._opener)
                views = call_views(self.calls)
            else:
                self.attempts = await read_journal(self.dash.location, self.run_id, self._opener)
                views = attempt_views(self.attempts, task.id)
        except NanoagentError as exc:
            self.query_one("#parts", Static).update(
                Text(f"The journal cannot be read now: {visible(str(exc))}", style="bold red")
            )
            return
        self.query_one("#task", Static).update(self._task_line(views))
        self.query_one("#parts", Static).update(conversation_text(views, calls=task is None))

    def _task_line(self, views: list[AttemptView] | None) -> Text:
        task = self.task_info
        line = Text()
        if task is None:
            line.append("the plan and reflections", style="bold")
            if views is not None:
                total = sum((v.usage for v in views), Usage())
                plural = "s" if len(views) != 1 else ""
                line.append(f"\n{len(views)} journaled call{plural} · {usage_text(total)}",
                            style="bright_black")  # fmt: skip
            return line
        line.append("task ", style="bright_black")
        line.append(visible(task.id), style="cyan")
        line.append(f"  {visible(task.status.value)}", style="bold")
        line.append(f"  {visible(task.description, lines=True)}")
        if views is not None:
            total = sum((v.usage for v in views), Usage())
            line.append(f"\n{len(views)} journaled attempt", style="bright_black")
            line.append("s" if len(views) != 1 else "", style="bright_black")
            line.append(f" · {usage_text(total)}", style="bright_black")
        return line
