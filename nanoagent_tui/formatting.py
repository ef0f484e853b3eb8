"""How runs and tasks look: status words, glyphs and colours, ages, progress bars.

No Textual here (Rich text only), so it can be tested and reused without an app. Every text
that came from the database (goal, run and task ids, agent, host, descriptions, results) goes
through :func:`nanoagent_core.safetext.visible` on its way into a row: control characters show
as escapes and never reach the terminal. Rows hold ``Text``, never markup, so ``[bold]`` in a
goal shows as written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from rich.text import Text

from nanoagent_core.clip import clip as clip_text
from nanoagent_core.ledger import token_count
from nanoagent_core.models import Phase, RunState, RunStatus, Task, TaskStatus
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus, shown_status

__all__ = [
    "ABORTING",
    "STATUS_ORDER",
    "RunRow",
    "TaskRow",
    "ago",
    "clip",
    "duration",
    "in_flight",
    "one_line",
    "progress_text",
    "run_row",
    "run_sort_key",
    "short_id",
    "span",
    "status_text",
    "status_word",
    "task_row",
    "task_status_text",
    "worker_text",
]

#: A running run whose abort was requested and not yet acted on.
ABORTING = ShownStatus.ABORTING

#: word -> (glyph, style). Crashed is reversed so that it stands out in any list.
_LOOK: dict[str, tuple[str, str]] = {
    ShownStatus.RUNNING: ("●", "bold green"),
    ABORTING: ("◐", "bold yellow"),
    ShownStatus.CRASHED: ("✖", "bold white on red"),
    ShownStatus.INTERRUPTED: ("‖", "yellow"),
    ShownStatus.COMPLETED: ("✔", "green"),
    ShownStatus.FAILED: ("✘", "bold red"),
    ShownStatus.ABORTED: ("■", "magenta"),
    #: waits for something (a budget raised, a person's decision): it stands out, not alarms
    ShownStatus.PAUSED: ("⧗", "bold black on cyan"),
    ShownStatus.QUEUED: ("…", "cyan"),
    ShownStatus.DAMAGED: ("⚠", "bold red"),
}

#: The "needs attention first" order of the status sort.
STATUS_ORDER: dict[str, int] = {
    ShownStatus.DAMAGED: 0,
    ShownStatus.CRASHED: 0,
    ABORTING: 1,
    ShownStatus.PAUSED: 1,
    ShownStatus.RUNNING: 2,
    ShownStatus.QUEUED: 2,
    ShownStatus.FAILED: 3,
    ShownStatus.INTERRUPTED: 4,
    ShownStatus.ABORTED: 5,
    ShownStatus.COMPLETED: 6,
}


def status_word(run: RunState, now: datetime) -> str:
    """The shown status, with ``aborting`` for a live run whose abort was requested."""
    return shown_status(run, now).value


def status_text(word: str, *, pad: int = 0) -> Text:
    glyph, style = _LOOK.get(word, ("?", ""))
    label = f"{glyph} {word}"
    if word in (ShownStatus.CRASHED, ShownStatus.PAUSED):
        label = f"{label} "  # reversed: a trailing cell, the glyph in line with the others
    return Text(label.ljust(pad), style=style, no_wrap=True, end="")


def one_line(text: str) -> str:
    """``text`` on one line, its control characters shown as escapes (safe to display)."""
    return visible(" ".join(text.split()))


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` cells with an ellipsis."""
    return clip_text(one_line(text), width) if width > 0 else ""


def short_id(run_id: str, width: int = 15) -> str:
    return clip_text(run_id, width)


def span(seconds: float) -> str:
    """``4s``, ``12m``, ``3h``, ``2d``: the largest whole unit."""
    whole = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "—"
    seconds = (now - then).total_seconds()
    return "just now" if seconds < 1 else f"{span(seconds)} ago"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def worker_text(run: RunState) -> str:
    if run.owner is None:
        return "—"
    return f"{run.owner.pid}@{visible(run.owner.host)}"


def progress_text(done: int, total: int, width: int = 6) -> Text:
    """``███░░░ 3/6``: a bar of ``width`` cells and the counts."""
    filled = 0 if total <= 0 else round(width * min(done, total) / total)
    text = Text(no_wrap=True, end="")
    text.append("█" * filled, style="green")
    text.append("░" * (width - filled), style="bright_black")
    text.append(f" {done}/{total}")
    return text


def in_flight(run: RunState) -> str | None:
    """The task whose body is (or was, when its worker died) in flight, if any."""
    if run.phase is Phase.EXECUTING and run.status is RunStatus.RUNNING:
        return run.current_task_id
    return None


SortKey = tuple[float | int | str, ...]


def run_sort_key(column: str) -> Callable[[tuple[RunState, str]], SortKey]:
    """How the runs list orders by ``column`` (a runs-table column key, or ``created``),
    ascending; ties: newest activity first, then by id."""

    def tie(run: RunState) -> SortKey:
        return (-run.updated_at.timestamp(), run.run_id)

    keys: dict[str, Callable[[RunState, str], SortKey]] = {
        "status": lambda run, word: (STATUS_ORDER.get(word, 9),),
        "run_id": lambda run, word: (run.run_id,),
        "goal": lambda run, word: (run.goal.casefold(),),
        "agent": lambda run, word: (run.agent,),
        "phase": lambda run, word: (run.phase.value,),
        "progress": lambda run, word: (
            run.tasks_done / run.tasks_total if run.tasks_total else 0.0,
            run.tasks_total,
        ),
        "iteration": lambda run, word: (run.iteration, run.max_iterations),
        "tokens": lambda run, word: (run.tokens_in + run.tokens_out,),
        "activity": lambda run, word: (run.updated_at.timestamp(),),
        "worker": lambda run, word: (worker_text(run),),
        "created": lambda run, word: (run.created_at.timestamp(),),
    }
    own = keys.get(column, keys["activity"])
    return lambda item: (*own(item[0], item[1]), *tie(item[0]))


class RunRow(NamedTuple):
    """One line of the runs table, as plain values (compared to find the cells to update)."""

    status: str
    run_id: str
    goal: str
    agent: str
    phase: str
    progress: tuple[int, int]
    iteration: tuple[int, int]
    tokens: str  #: tokens in and out, as ``list`` shows them (``-`` for none)
    activity: str
    worker: str


@lru_cache(maxsize=8192)
def _goal_line(goal: str) -> str:
    return one_line(goal[:400])


def run_row(run: RunState, now: datetime, word: str | None = None) -> RunRow:
    """``word``: the status word when the caller has it already. A paused run's phase cell
    says why it is paused (``⧗ budget``): what a person has to do about it."""
    word = word or status_word(run, now)
    phase = run.phase.value
    if word == ShownStatus.PAUSED and run.pause_reason is not None:
        phase = f"⧗ {run.pause_reason.value}"
    return RunRow(
        status=word,
        run_id=visible(run.run_id),
        goal=_goal_line(run.goal),
        agent=visible(run.agent),
        phase=phase,
        progress=(run.tasks_done, run.tasks_total),
        iteration=(run.iteration, run.max_iterations),
        tokens=token_count(run.tokens_in + run.tokens_out),
        activity=ago(now, run.updated_at),
        worker=worker_text(run),
    )


_TASK_LOOK: dict[TaskStatus, tuple[str, str]] = {
    TaskStatus.PENDING: ("·", "bright_black"),
    TaskStatus.DONE: ("✔", "green"),
    TaskStatus.FAILED: ("✘", "bold red"),
    TaskStatus.CANCELLED: ("⊘", "bright_black"),
}


class TaskRow(NamedTuple):
    status: str  #: the task's status, or "in flight" / "retrying"
    task_id: str
    priority: int
    attempts: int
    description: str
    result: str


def task_row(task: Task, flying: str | None) -> TaskRow:
    status = task.status.value
    if task.id == flying:
        status = "in flight"
    elif task.status is TaskStatus.PENDING and task.failures:
        status = "retrying"
    preview = task.result if task.result is not None else (task.error or "")
    return TaskRow(
        status=status,
        task_id=visible(task.id),
        priority=task.priority,
        attempts=task.attempts,
        description=one_line(task.description),
        result=one_line(preview),
    )


def task_status_text(word: str) -> Text:
    if word == "in flight":
        return Text("▶ running", style="bold cyan", no_wrap=True, end="")
    if word == "retrying":
        return Text("↻ retrying", style="yellow", no_wrap=True, end="")
    glyph, style = _TASK_LOOK.get(TaskStatus(word), ("?", ""))
    return Text(f"{glyph} {word}", style=style, no_wrap=True, end="")
