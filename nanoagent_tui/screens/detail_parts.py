"""The pieces of text the detail screen shows (Rich only; built from models and a "now").

Stored text goes in as ``Text`` (never markup) and through ``visible`` (or ``clip``, which
calls it): control characters show as escapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from nanoagent_core.models import Event, PauseReason, Phase, RunState, Task, TaskStatus
from nanoagent_core.pause import pause_text
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus
from nanoagent_tui.formatting import (
    ABORTING,
    ago,
    clip,
    duration,
    in_flight,
    one_line,
    progress_text,
    span,
    status_text,
    worker_text,
)

__all__ = [
    "InfoGrid",
    "crash_line",
    "duration_bars",
    "durations_text",
    "event_line",
    "failure_text",
    "info_table",
    "phase_strip",
    "task_result",
]

_PHASES = (Phase.PLANNING, Phase.EXECUTING, Phase.REFLECTING, Phase.DONE)
_LIT = {
    ShownStatus.RUNNING.value: "bold black on green",
    ABORTING: "bold black on yellow",
    ShownStatus.CRASHED.value: "bold white on red",
    ShownStatus.INTERRUPTED.value: "bold black on yellow",
    ShownStatus.COMPLETED.value: "bold black on green",
    ShownStatus.FAILED.value: "bold white on red",
    ShownStatus.ABORTED.value: "bold white on magenta",
    ShownStatus.PAUSED.value: "bold black on cyan",
    ShownStatus.QUEUED.value: "bold black on cyan",
}
_EVENT_STYLE = {
    "task_done": "green",
    "task_failed": "red",
    "task_started": "cyan",
    "run_failed": "bold red",
    "run_aborted": "magenta",
    "abort_requested": "yellow",
    "run_interrupted": "yellow",
    "run_paused": "bold cyan",
    "budget_set": "cyan",
    "approval_requested": "bold yellow",
    "approval_decided": "yellow",
    "run_completed": "bold green",
    "run_claimed": "blue",
}


def _clock(moment: datetime | None, day: datetime | None = None) -> str:
    """Local date and time; the time alone when ``day`` is the same date."""
    if moment is None:
        return "—"
    local = moment.astimezone()
    if day is not None and local.date() == day.astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


#: The label column's width and the gap after it.
_LABEL = 6
_GAP = 1


@dataclass(frozen=True)
class InfoGrid:
    """The info grid as a renderable that is built at the width it is rendered at (the
    widget's own width at every render, after any resize): a grid built once for the
    terminal's width of the moment, then drawn narrower, had Rich cut its labels
    (``sta…``, ``wor…``)."""

    run: RunState
    word: str
    now: datetime
    short: bool

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield info_table(self.run, self.word, self.now, options.max_width, short=self.short)


def info_table(run: RunState, word: str, now: datetime, width: int, *, short: bool) -> Table:
    """Goal, status, ids, agent and options, worker, times (one line each; the goal may take
    two unless ``short``), for ``width`` cells: the labels are never cut, the values are
    cut with an ellipsis to the room left."""
    grid = Table.grid(padding=(0, _GAP))
    grid.add_column(style="bright_black", no_wrap=True, width=_LABEL, min_width=_LABEL)
    grid.add_column(ratio=1, no_wrap=short, overflow="ellipsis")
    cells = max(1, width - _LABEL - _GAP)  #: the room for a value
    room = max(20, cells - 1)
    goal = clip(run.goal, room if short else 2 * room)
    goal_text = Text(goal, style="bold")
    grid.add_row("goal", goal_text)
    status = Text(no_wrap=True, overflow="ellipsis")
    status.append_text(status_text(word))
    status.append("   run ", style="bright_black")
    status.append(visible(run.run_id), style="cyan")
    status.append("   epoch ", style="bright_black")
    status.append(str(run.epoch))
    grid.add_row("status", status)
    options = visible(
        " ".join(f"{key}={value}" for key, value in sorted(run.agent_options.items()))
    )
    agent = Text(no_wrap=True, overflow="ellipsis")
    agent.append(visible(run.agent), style="bold")
    agent.append(f"  {options}", style="bright_black")
    grid.add_row("agent", agent)
    worker = Text(worker_text(run), no_wrap=True, overflow="ellipsis")
    if run.owner is not None:
        worker.append(f"   heartbeat {ago(now, run.heartbeat_at)}", style="bright_black")
        if run.lease_expires_at is not None:
            left = (run.lease_expires_at - now).total_seconds()
            lease = (
                f"lease {span(left)} left"
                if left > 0
                else f"lease ended {ago(now, run.lease_expires_at)}"
            )
            worker.append(f"   {lease}", style="bright_black")
    grid.add_row("worker", worker)
    times = Text(no_wrap=True, overflow="ellipsis")
    times.append("created ", style="bright_black")
    times.append(_clock(run.created_at))
    times.append(" · updated ", style="bright_black")
    times.append(f"{_clock(run.updated_at, run.created_at)} ({ago(now, run.updated_at)})")
    if run.finished_at is not None:
        times.append(" · finished ", style="bright_black")
        times.append(_clock(run.finished_at, run.created_at))
    grid.add_row("times", times)
    for line in (
        (goal_text, status, agent, worker, times) if short else (status, agent, worker, times)
    ):
        # a one-line value wider than the room would make Rich shrink every column,
        # the labels too
        line.truncate(cells, overflow="ellipsis")
    return grid


def phase_strip(run: RunState, word: str, width: int = 160) -> Text:
    """planning → executing → reflecting → done, the current one lit; iteration and tasks."""
    strip = Text(no_wrap=True, overflow="ellipsis")
    current = _PHASES.index(run.phase)
    for index, phase in enumerate(_PHASES):
        if index:
            strip.append(" → ", style="bright_black")
        if index == current:
            strip.append(f" {phase.value} ", style=_LIT.get(word, "reverse"))
        elif index < current:
            strip.append(phase.value, style="green")
        else:
            strip.append(phase.value, style="bright_black")
    gap = "   " if width >= 100 else "  "
    strip.append(f"{gap}iteration {run.iteration}/{run.max_iterations}{gap}tasks ")
    strip.append_text(
        progress_text(run.tasks_done, run.tasks_total, width=10 if width >= 100 else 5)
    )
    return strip


def failure_text(run: RunState, word: str, tasks: tuple[Task, ...]) -> Text | None:
    """What went wrong (a failed run's error and failing task; a crashed run's in-flight
    task; an aborted or interrupted run's stopping point), or None."""
    by_id = {task.id: task for task in tasks}
    if word == ShownStatus.CRASHED:
        text = Text()
        text.append("✖ crashed: ", style="bold red")
        who = f"worker {worker_text(run)}" if run.owner else "no worker claimed it"
        text.append(f"{who} is gone or its lease ran out; ")
        text.append("r resumes it", style="bold")
        flying = by_id.get(in_flight(run) or "")
        if flying is not None:
            text.append(
                f"\n▶ in flight: task {visible(flying.id)} (attempt {flying.attempts}) ",
                style="cyan",
            )
            text.append(clip(flying.description, 200))
        return text
    if word == ABORTING:
        text = Text()
        text.append("◐ abort requested", style="bold yellow")
        text.append(f" {_clock(run.abort_requested_at)}; the worker stops at its next heartbeat")
        return text
    if word == ShownStatus.FAILED:
        text = Text()
        text.append("✘ failed: ", style="bold red")
        text.append(visible(run.error, lines=True) if run.error else "no error recorded")
        failing = [task for task in tasks if task.status is TaskStatus.FAILED]
        if not failing and run.current_task_id in by_id:
            failing = [by_id[run.current_task_id or ""]]
        for task in failing[:3]:
            text.append(f"\nfailing task {visible(task.id)}", style="bold red")
            text.append(f" (attempts {task.attempts}): {clip(task.description, 160)}")
            if task.error:
                text.append("\n  last error: ", style="red")
                text.append(clip(task.error, 300))
        return text
    if word == ShownStatus.PAUSED:
        text = Text()
        text.append("⧗ paused: ", style="bold cyan")
        text.append(pause_text(run.pause_reason, run.pause_detail) or "no reason recorded")
        if run.pause_reason is PauseReason.BUDGET:
            text.append("; raise the budget: ")
            text.append(f"nanoagent resume {visible(run.run_id)} --max-tokens N", style="bold")
        elif run.pause_reason is PauseReason.APPROVAL:
            text.append("; it waits for a decision: ")
            text.append("y approves, d denies", style="bold")
        else:
            text.append("; ")
            text.append("r resumes it", style="bold")
        return text
    if word in (ShownStatus.ABORTED, ShownStatus.INTERRUPTED) and run.error:
        style = "bold magenta" if word == ShownStatus.ABORTED else "bold yellow"
        return Text.assemble(
            (f"{status_text(word).plain}: ", style), visible(run.error, lines=True)
        )
    return None


def task_result(
    task: Task | None, results: Mapping[str, str], flying: str | None
) -> RenderableType:
    """The selected task in full: description, status, attempts, result or last error."""
    if task is None:
        return Text("no task selected", style="bright_black")
    head = Text.assemble(
        (visible(task.id), "bold cyan"),
        ("  ▶ running", "bold cyan") if task.id == flying else f"  {task.status.value}",
        (f"  priority {task.priority}  attempts {task.attempts}", "bright_black"),
    )
    parts: list[RenderableType] = [head, Text(visible(task.description, lines=True)), Text("")]
    result = results.get(task.id, task.result)
    if result:
        parts += [Text("result", style="bold"), Text(visible(result, lines=True))]
    if task.error:
        parts += [
            Text("last error", style="bold red"),
            Text(visible(task.error, lines=True), style="red"),
        ]
    if not result and not task.error:
        parts.append(Text("no result yet", style="bright_black"))
    return Group(*parts)


#: What each kind of event reads as in the log.
_EVENT_WORDS = {
    "run_created": "run created",
    "run_claimed": "claimed by a worker",
    "planned": "planned",
    "task_started": "started",
    "task_done": "done",
    "task_failed": "failed",
    "reflected": "reflected",
    "abort_requested": "abort requested",
    "run_completed": "run completed",
    "run_failed": "run failed",
    "run_interrupted": "run interrupted",
    "run_aborted": "run aborted",
    "run_paused": "run paused",
    "budget_set": "budget set",
    "approval_requested": "asks approval",
    "approval_decided": "approval decided",
    "note": "note",
}
#: Keys shown in the parentheses, in this order; then the text keys after a colon, whole.
_DETAIL_KEYS = ("iteration", "attempt", "seconds", "will_retry")
_TEXT_KEYS = ("description", "result", "error", "reason")


def _detail(key: str, value: object) -> str | None:
    if value is None or value in ([], {}):
        return None
    if key == "seconds" and isinstance(value, int | float):
        return duration(float(value))
    if key == "will_retry":
        return "will retry" if value else "no retry left"
    if isinstance(value, list):
        return f"{len(value)} {visible(key)}"  # pyright: ignore[reportUnknownArgumentType]
    if isinstance(value, dict):
        return None
    if key == "digest" and isinstance(value, str):
        return f"digest {visible(value[:12])}…"  # enough to tell two requests apart
    return f"{visible(key)} {one_line(str(value))}"


def event_line(event: Event) -> Text:
    """``12:04:31 t3 done (iteration 3, attempt 1, 1.4s): the result, whole``: the time,
    what happened (to which task), the numbers, then the text; wrapped by the log, never
    cut."""
    data = event.data
    style = _EVENT_STYLE.get(event.kind, "")
    line = Text.assemble((f"{event.ts.astimezone().strftime('%H:%M:%S')} ", "bright_black"))
    task = data.get("task_id")
    word = _EVENT_WORDS.get(event.kind, visible(event.kind))
    line.append(f"{visible(str(task))} {word}" if task else word, style=style or "bold")
    details = [shown for key in _DETAIL_KEYS if (shown := _detail(key, data.get(key))) is not None]
    known = {"task_id", *_DETAIL_KEYS, *_TEXT_KEYS}
    details += [
        shown
        for key in sorted(data)
        if key not in known and (shown := _detail(key, data[key])) is not None
    ]
    if details:
        line.append(f" ({', '.join(details)})", style="bright_black")
    texts = [one_line(str(data[key])) for key in _TEXT_KEYS if data.get(key)]
    if texts:
        line.append(": ")
        line.append(" · ".join(texts))
    return line


def crash_line(run: RunState, now: datetime) -> Text:
    """The line the log gets when the dashboard finds the run's worker gone."""
    line = Text.assemble((f"{now.astimezone().strftime('%H:%M:%S')} ", "bright_black"))
    line.append("✖ crashed", style="bold white on red")
    who = f"worker {worker_text(run)}" if run.owner else "no worker claimed it"
    line.append(f" {who} is gone or its lease ran out (seen by the dashboard); r resumes it")
    return line


_BARS = " ▁▂▃▄▅▆▇█"


def duration_bars(seconds: list[float], width: int, height: int) -> Text:
    """The last ``width`` task durations as bars from zero to the longest (``height`` rows):
    equal durations draw bars of equal height, one column per task, no gaps."""
    shown = seconds[-max(1, width) :]
    if not shown or height <= 0:
        return Text("")
    top = max(shown) or 1.0
    eighths = [round(8 * height * value / top) for value in shown]
    rows: list[str] = []
    for row in reversed(range(height)):
        floor = row * 8
        rows.append("".join(_BARS[max(0, min(8, level - floor))] for level in eighths))
    return Text("\n".join(rows), style="cyan", no_wrap=True)


def durations_text(seconds: list[float]) -> Text:
    if not seconds:
        return Text("task durations: none finished yet", style="bright_black")
    mean = sum(seconds) / len(seconds)
    return Text.assemble(
        ("task durations ", "bold"),
        (f"({len(seconds)})\n", "bright_black"),
        f"last {duration(seconds[-1])} · mean {duration(mean)} · max {duration(max(seconds))}",
    )
