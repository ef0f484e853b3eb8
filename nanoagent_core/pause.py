"""Pausing a run: the step that stops it at a checkpoint in status ``paused``, with a reason.

A pause is an ordinary step (one transaction, fenced by the worker's epoch) whose status is
``paused``: the store writes the position, the reason and its one-line detail, releases the
owner and the lease (no process waits while the run is paused), and appends a ``run_paused``
event. The run is not finished and not crashed: ``resume`` claims it like an interrupted run
(the claim clears the reason), ``abort`` aborts it at once (no live worker holds it), and
``prune`` never deletes it.

Two ways in:

* an executor returns ``ExecutionResult(..., pause=Pause(reason, detail))`` instead of an
  outcome: the loop journals the attempt with ``outcome=reason`` (not a failure: the task stays
  pending, its failure count unchanged) and commits :func:`pause_step` at the task's position;
  on resume the task runs again under the next attempt number;
* the loop itself pauses at a checkpoint (the budget, checked before each body).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nanoagent_core.clip import clip
from nanoagent_core.models import (
    MAX_PAUSE_DETAIL_CHARS,
    Attempt,
    EventKind,
    ModelCall,
    PauseReason,
    Phase,
    RunStatus,
    Task,
)
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.safetext import visible

__all__ = ["Pause", "pause_detail", "pause_step", "pause_text", "paused_event"]


@dataclass(frozen=True, slots=True)
class Pause:
    """Why an executor stops its run instead of giving an outcome (see ExecutionResult)."""

    reason: PauseReason
    detail: str | None = None  #: one line for a person (made one line and clipped)


def pause_detail(text: str | None) -> str | None:
    """``text`` as a stored pause detail: one line, at most MAX_PAUSE_DETAIL_CHARS."""
    if text is None:
        return None
    line = " ".join(text.split())
    return clip(line, MAX_PAUSE_DETAIL_CHARS) or None


def paused_event(
    reason: PauseReason,
    detail: str | None,
    *,
    phase: Phase,
    iteration: int,
    task_id: str | None,
) -> NewEvent:
    return NewEvent(
        kind=EventKind.RUN_PAUSED,
        data={
            "reason": reason.value,
            "detail": detail,
            "phase": phase.value,
            "iteration": iteration,
            "task_id": task_id,
        },
    )


def pause_step(
    reason: PauseReason,
    detail: str | None = None,
    *,
    phase: Phase,
    iteration: int,
    current_task_id: str | None,
    tasks: Iterable[Task] = (),
    attempts: Iterable[Attempt] = (),
    calls: Iterable[ModelCall] = (),
    events: Iterable[NewEvent] = (),
) -> Step:
    """The step that pauses a run at this position (with whatever else it commits: task
    changes, journal entries, events before the ``run_paused`` one)."""
    line = pause_detail(detail)
    return Step(
        phase=phase,
        iteration=iteration,
        current_task_id=current_task_id,
        tasks=tuple(tasks),
        attempts=tuple(attempts),
        calls=tuple(calls),
        events=(
            *events,
            paused_event(reason, line, phase=phase, iteration=iteration, task_id=current_task_id),
        ),
        status=RunStatus.PAUSED,
        pause_reason=reason,
        pause_detail=line,
    )


def pause_text(reason: PauseReason | str | None, detail: str | None) -> str:
    """``budget: 1,234 of 1,000 tokens spent`` for a person (control characters visible)."""
    if reason is None:
        return ""
    word = reason.value if isinstance(reason, PauseReason) else str(reason)
    return visible(f"{word}: {detail}" if detail else word)
