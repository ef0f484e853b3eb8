"""A run's budget: at most so many tokens (in + out) and so many USD over its journaled model
calls (task bodies, plans, reflections), kept in the run row (``max_tokens``,
``max_cost_usd``; None: no limit).

* Checked by the loop before each task body starts (and before each reflection and the plan):
  a run that has reached its budget stops at that checkpoint, ``paused`` with reason
  ``budget`` (:func:`exhausted` says how much was spent). ``resume RUN --max-tokens N``
  raises it (the worker sets it, fenced, right after its claim) and the run goes on.
* Passed into a body, a plan and a reflection as what remains (:func:`body_limits`, read by
  a model-backed part through :func:`current_limits` and given to pydantic-ai as
  ``UsageLimits``): a body that goes over is cut short; its attempt is journaled as cut by
  the budget (not a failure), its task stays pending and runs again, under a new attempt
  number, after the resume. A plan or reflection cut short pauses the run the same way (its
  call journaled with outcome ``budget``) and is asked again on resume.
* Unknown cost is treated conservatively: once an attempt made requests at a price nobody
  knows, a cost budget counts as reached (it cannot be checked), so a run never spends past
  a cost budget unseen. Resume with a token budget only (``--max-cost none``) to go on.

The totals are the run's ledger (ledger.py): the executor's journaled attempts and the
planner's and reflector's journaled calls.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from nanoagent_core.models import RunState

__all__ = [
    "BodyLimits",
    "Budget",
    "body_limits",
    "current_limits",
    "exhausted",
    "limits_for_body",
    "spent_tokens",
]


@dataclass(frozen=True, slots=True)
class Budget:
    """A run's whole budget, as set with ``set_budget`` (None: no limit)."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """What one task body may still spend (None: no limit on that)."""

    tokens: int | None = None
    cost_usd: float | None = None


_LIMITS: ContextVar[BodyLimits | None] = ContextVar("nanoagent_body_limits", default=None)


def spent_tokens(run: RunState) -> int:
    return run.tokens_in + run.tokens_out


def exhausted(run: RunState) -> str | None:
    """One line saying how the run's budget is spent, or None while some of it remains."""
    spent = spent_tokens(run)
    if run.max_tokens is not None and spent >= run.max_tokens:
        return f"{spent:,} of {run.max_tokens:,} tokens spent"
    if run.max_cost_usd is not None:
        if run.cost_unknown:
            return (
                f"cost unknown ({run.cost_unknown} attempt(s) at a price nobody knows), so the"
                f" cost budget of ${run.max_cost_usd:g} cannot be checked"
            )
        cost = run.cost_usd or 0.0
        if cost >= run.max_cost_usd:
            return f"${cost:.4f} of ${run.max_cost_usd:g} spent"
    return None


def body_limits(run: RunState) -> BodyLimits:
    """What remains of the run's budget for its next body (call when not :func:`exhausted`)."""
    tokens = None if run.max_tokens is None else max(1, run.max_tokens - spent_tokens(run))
    cost = None
    if run.max_cost_usd is not None:
        cost = max(0.0, run.max_cost_usd - (run.cost_usd or 0.0))
    return BodyLimits(tokens, cost)


@contextmanager
def limits_for_body(limits: BodyLimits | None) -> Generator[None]:
    """Make ``limits`` what :func:`current_limits` answers inside the body (this task and
    what it awaits; other tasks are unaffected)."""
    token = _LIMITS.set(limits)
    try:
        yield
    finally:
        _LIMITS.reset(token)


def current_limits() -> BodyLimits | None:
    """The limits of the body running in this context (None: no budget, or not in a body).
    A model-backed executor passes them on (pydantic-ai ``UsageLimits``) and, when a limit
    cuts its call short, returns ``ExecutionResult(..., pause=Pause(PauseReason.BUDGET))``."""
    return _LIMITS.get()
