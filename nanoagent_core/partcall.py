"""One planner or reflector call as the loop makes it: under what remains of the run's
budget (budget.py, as a task body), timed, and with its conversation for the journal
(``Step.calls``, built by ledger.call_entry) whatever became of it."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from nanoagent_core.agents.base import PartCallError, Pause, Transcript
from nanoagent_core.budget import body_limits, exhausted, limits_for_body
from nanoagent_core.ledger import call_entry, with_ledger
from nanoagent_core.models import ModelCall, RunState
from nanoagent_core.pause import pause_step
from nanoagent_core.protocols import Step
from nanoagent_core.replace import replace

__all__ = ["PartCall", "call_part", "pause_for_call"]

T = TypeVar("T")

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PartCall(Generic[T]):
    """What one call came to: ``value`` (None when it raised: then ``error`` says why in
    the loop's words, and ``pause`` is set when the run's budget cut it short)."""

    role: str
    iteration: int
    value: T | None
    transcript: Transcript | None
    seconds: float
    error: str | None = None
    pause: Pause | None = None

    def journaled(self, step: Step, outcome: str = "done") -> Step:
        """``step`` (which commits the call's outcome) with the call's journal entry."""
        entry = call_entry(self.role, self.iteration, self.transcript, outcome, self.seconds)
        return replace(step, calls=entry)

    def ended(self, run: RunState, failed: Step) -> Step:
        """The step after a call that raised: the pause that cut it short, else ``failed``
        (the step that fails the run), either with the call's journal entry."""
        if self.pause is None:
            return self.journaled(failed, "failed")
        entry = call_entry(self.role, self.iteration, self.transcript, "budget", self.seconds)
        return pause_for_call(run, self.role, self.pause, entry)


def _transcript_of(value: object) -> Transcript | None:
    """The transcript a model-backed part hands back with its output (``PlannedTasks``,
    ``Reflection``); None for a part that is not model-backed."""
    found = getattr(value, "transcript", None)
    return found if isinstance(found, Transcript) else None


async def call_part(run: RunState, role: str, call: Callable[[], Awaitable[T]]) -> PartCall[T]:
    """Make the call with the run's remaining budget as its limits (a model-backed part
    passes them to pydantic-ai as ``UsageLimits``); never raises but for cancellation."""
    budgeted = run.max_tokens is not None or run.max_cost_usd is not None
    limits = body_limits(run) if budgeted else None
    began = time.monotonic()
    at = run.iteration
    try:
        with limits_for_body(limits):
            value = await call()
    except PartCallError as exc:
        seconds = round(time.monotonic() - began, 4)
        error = f"{type(exc).__name__}: {exc}"
        return PartCall(role, at, None, exc.transcript, seconds, error, exc.pause)
    except Exception as exc:
        seconds = round(time.monotonic() - began, 4)
        return PartCall(role, at, None, None, seconds, f"{type(exc).__name__}: {exc}")
    seconds = round(time.monotonic() - began, 4)
    return PartCall(role, at, value, _transcript_of(value), seconds)


def pause_for_call(run: RunState, role: str, pause: Pause, calls: tuple[ModelCall, ...]) -> Step:
    """The step that pauses the run where a planner or reflector call was cut short (by its
    budget): the call is journaled with it, and asked again when the run resumes."""
    spent = exhausted(with_ledger(run, (), calls))
    detail = "; ".join(filter(None, [spent, f"{role}: {pause.detail or 'cut short'}"]))
    _log.info("run %s: the %s was cut short (%s); pausing", run.run_id, role, detail)
    return pause_step(
        pause.reason,
        detail,
        phase=run.phase,
        iteration=run.iteration,
        current_task_id=run.current_task_id,
        calls=calls,
    )
