"""The store rules, written once: pure functions every store (memory, SQLite, PostgreSQL) calls.

A store reads the row, applies the rule here, and writes. Here: why a claim or a fenced write
is refused (error type and message), the payloads of the events a store writes itself
(created, claimed, abort requested, aborted, budget set), the parameters of a run row and of
a step, and the text-search rule (case ignored for every alphabet, ``%`` and ``_`` taken literally).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from nanoagent_core.errors import (
    LeaseLostError,
    NanoagentError,
    RunBusyError,
    RunExistsError,
    RunFinishedError,
    RunNotFoundError,
    ValidationError,
)
from nanoagent_core.models import Attempt, EventKind, ModelCall, Owner, RunState, RunStatus
from nanoagent_core.protocols import NewEvent, Step

__all__ = [
    "DEFAULT_RESTART_BUDGET",
    "FOLD_FUNCTION",
    "NO_LEDGER",
    "aborted_event",
    "attempt_params",
    "budget_event",
    "budget_failed_event",
    "budget_params",
    "budget_spent",
    "call_params",
    "check_budget",
    "claim_refusal",
    "claimed_event",
    "created_event",
    "duplicate_attempt",
    "event_json",
    "fence_refusal",
    "fold",
    "ledger_params",
    "like_pattern",
    "matches_text",
    "missing_task",
    "owner_params",
    "prunable",
    "prune_boundary",
    "prune_statuses",
    "queue_order",
    "restarted_event",
    "run_exists",
    "run_finished",
    "run_not_found",
    "run_params",
    "step_params",
]

# -- refusals --------------------------------------------------------------------------------


def run_not_found(run_id: str) -> RunNotFoundError:
    return RunNotFoundError(f"no run {run_id!r}")


def run_exists(run_id: str) -> RunExistsError:
    return RunExistsError(f"run {run_id!r} already exists")


def run_finished(run: RunState) -> RunFinishedError:
    return RunFinishedError(f"run {run.run_id!r} has already finished ({run.status})")


def missing_task(run_id: str, task_id: object) -> ValidationError:
    """A result naming a task the run does not have."""
    return ValidationError(f"run {run_id!r} has no task {task_id!r}; a result needs its task")


def fence_refusal(run_id: str, stored_epoch: int | None, epoch: int) -> NanoagentError:
    """Why a write fenced by ``epoch`` was refused, given the run's epoch as stored now
    (None: no such run)."""
    if stored_epoch is None:
        return run_not_found(run_id)
    if stored_epoch == epoch:  # the epoch is ours, but the run is no longer running
        return LeaseLostError(
            f"run {run_id!r} is no longer running; this worker no longer holds it"
        )
    return LeaseLostError(
        f"lease on run {run_id!r} lost: epoch is {stored_epoch}, this worker holds {epoch};"
        " nothing was written"
    )


def claim_refusal(run_id: str, run: RunState | None, expected_epoch: int) -> NanoagentError:
    """Why a claim (or an abort of an unowned run) expecting ``expected_epoch`` was refused,
    given the run as stored now (None: no such run)."""
    if run is None:
        return run_not_found(run_id)
    if run.epoch != expected_epoch:
        return RunBusyError(f"run {run_id!r} was claimed by another worker meanwhile")
    if run.status is RunStatus.COMPLETED:
        return RunFinishedError(f"run {run_id!r} has already completed")
    if run.status.finished:
        return run_finished(run)
    owner = run.owner
    holder = f"pid {owner.pid} on {owner.host}" if owner else "a worker"
    return RunBusyError(f"run {run_id!r} is held by a live worker ({holder})")


# -- events a store writes itself ------------------------------------------------------------


def event_json(event: NewEvent) -> str:
    """An event's data as stored (JSON); ValidationError before anything is written."""
    try:
        return json.dumps(event.data)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"event {event.kind!r}: data is not JSON ({exc})") from None


def created_event(run: RunState) -> NewEvent:
    return NewEvent(
        kind=EventKind.RUN_CREATED,
        data={"goal": run.goal, "agent": run.agent, "max_iterations": run.max_iterations},
    )


def owner_params(owner: Owner) -> dict[str, Any]:
    """The claiming worker's parameters of a claim statement (every store, every claim)."""
    return {"host": owner.host, "pid": owner.pid, "pid_started": owner.pid_started}


def claimed_event(claimed: RunState, owner: Owner) -> NewEvent:
    return NewEvent(
        kind=EventKind.RUN_CLAIMED,
        data={"epoch": claimed.epoch, "host": owner.host, "pid": owner.pid},
    )


def aborted_event(run: RunState, reason: str) -> NewEvent:
    return NewEvent(
        kind=EventKind.RUN_ABORTED,
        data={
            "reason": reason,
            "phase": run.phase.value,
            "iteration": run.iteration,
            "task_id": run.current_task_id,
        },
    )


# -- parameters ------------------------------------------------------------------------------


def run_params(run: RunState) -> dict[str, Any]:
    """The columns of a new run row that every SQL store writes alike (times are the
    store's own: each adds them in its column type)."""
    owner = run.owner
    return {
        "run_id": run.run_id,
        "goal": run.goal,
        "max_iterations": run.max_iterations,
        "agent": run.agent,
        "agent_options": json.dumps(run.agent_options, sort_keys=True),
        "phase": run.phase.value,
        "iteration": run.iteration,
        "current_task_id": run.current_task_id,
        "status": run.status.value,
        "owner_host": owner.host if owner else None,
        "owner_pid": owner.pid if owner else None,
        "owner_pid_started": owner.pid_started if owner else None,
        "epoch": run.epoch,
        "error": run.error,
        "result": run.result,
        "pause_reason": None if run.pause_reason is None else run.pause_reason.value,
        "pause_detail": run.pause_detail,
        "max_tokens": run.max_tokens,
        "max_cost_usd": run.max_cost_usd,
    }


def step_params(run_id: str, step: Step, epoch: int) -> dict[str, Any]:
    """The parameters of a step's final statement: the new position, and whether the step
    ends the run (``finished``) or gives it up (``release``: owner and lease cleared)."""
    return {
        "run_id": run_id,
        "epoch": epoch,
        "phase": step.phase.value,
        "iteration": step.iteration,
        "current_task_id": step.current_task_id,
        "status": None if step.status is None else step.status.value,
        "result": step.result,
        "error": step.error,
        "finished": step.status is not None and step.status.finished,
        "release": step.status is not None and step.status is not RunStatus.RUNNING,
        # written with a status only (as result and error): None for every status but paused
        "pause_reason": None if step.pause_reason is None else step.pause_reason.value,
        "pause_detail": step.pause_detail,
        **ledger_params(step.attempts, step.calls),
    }


def budget_params(
    run_id: str, epoch: int, max_tokens: int | None, max_cost_usd: float | None
) -> dict[str, Any]:
    """The parameters of a budget change; ValidationError for a budget no run can have."""
    if max_tokens is not None and (isinstance(max_tokens, bool) or max_tokens < 1):
        raise ValidationError(f"max_tokens must be a whole number from 1, not {max_tokens!r}")
    if max_cost_usd is not None and not (0 < max_cost_usd < float("inf")):
        raise ValidationError(f"max_cost_usd must be more than 0 USD, not {max_cost_usd!r}")
    return {
        "run_id": run_id,
        "epoch": epoch,
        "max_tokens": max_tokens,
        "max_cost_usd": None if max_cost_usd is None else float(max_cost_usd),
    }


def budget_event(params: dict[str, Any]) -> NewEvent:
    return NewEvent(
        kind=EventKind.BUDGET_SET,
        data={"max_tokens": params["max_tokens"], "max_cost_usd": params["max_cost_usd"]},
    )


#: A new run's ledger totals.
NO_LEDGER: dict[str, Any] = {
    "requests": 0,
    "tokens_in": 0,
    "tokens_out": 0,
    "cost_usd": None,
    "cost_unknown": 0,
}


def ledger_params(attempts: Sequence[Attempt], calls: Sequence[ModelCall] = ()) -> dict[str, Any]:
    """How a step's journal entries (task attempts, planner and reflector calls) move the
    run's ledger totals (by difference, as the task counters move): requests and tokens add
    up; ``cost`` is the sum of the known costs (None when none is known: the run's stays as
    it is); ``cost_unknown`` counts the entries that made requests at an unknown price.
    ValidationError for a step that journals one (task, attempt) twice, before anything is
    written."""
    seen: set[tuple[str, int]] = set()
    for attempt in attempts:
        key = (attempt.task_id, attempt.attempt)
        if key in seen:
            raise duplicate_attempt("this step", attempt)
        seen.add(key)
    entries: list[Attempt | ModelCall] = [*attempts, *calls]
    known = [a.cost_usd for a in entries if a.cost_usd is not None]
    return {
        "requests": sum(a.requests for a in entries),
        "tokens_in": sum(a.tokens_in for a in entries),
        "tokens_out": sum(a.tokens_out for a in entries),
        "cost": sum(known) if known else None,
        "cost_unknown": sum(a.cost_usd is None and a.requests > 0 for a in entries),
    }


def attempt_params(run_id: str, attempt: Attempt) -> dict[str, Any]:
    """The columns of a journal row."""
    return {
        "run_id": run_id,
        "task_id": attempt.task_id,
        "attempt": attempt.attempt,
        "outcome": attempt.outcome,
        "messages": attempt.messages,
        "model": attempt.model,
        "requests": attempt.requests,
        "tokens_in": attempt.tokens_in,
        "tokens_out": attempt.tokens_out,
        "cost_usd": attempt.cost_usd,
        "seconds": attempt.seconds,
    }


def call_params(run_id: str, call: ModelCall) -> dict[str, Any]:
    """The columns of a planner or reflector journal row (its number given by the store)."""
    return {
        "run_id": run_id,
        "role": call.role,
        "iteration": call.iteration,
        "outcome": call.outcome,
        "messages": call.messages,
        "model": call.model,
        "requests": call.requests,
        "tokens_in": call.tokens_in,
        "tokens_out": call.tokens_out,
        "cost_usd": call.cost_usd,
        "seconds": call.seconds,
    }


def duplicate_attempt(where: str, attempt: Attempt) -> ValidationError:
    """``where``: a run id, or "this step" for an entry the step itself repeats."""
    return ValidationError(
        f"task {attempt.task_id!r} attempt {attempt.attempt} is already in the journal"
        f" ({where}); an attempt is journaled once"
    )


# -- text search -----------------------------------------------------------------------------

#: The SQL function (SQLite registers it on each connection) that folds case as :func:`fold`.
FOLD_FUNCTION = "nanoagent_fold"


def fold(text: str) -> str:
    """Case folded the same way for every alphabet (``Écrire`` and ``écrire`` agree), as
    PostgreSQL's ``ILIKE`` folds it."""
    return text.lower()


def matches_text(needle: str, *haystacks: str) -> bool:
    """Whether ``needle`` occurs, case ignored, in any of ``haystacks``."""
    folded = fold(needle)
    return any(folded in fold(haystack) for haystack in haystacks)


def like_pattern(text: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern matching ``text`` (folded) anywhere, with ``%``,
    ``_`` and ``\\`` taken literally."""
    escaped = fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- retention -------------------------------------------------------------------------------

#: The stored statuses prune may delete: finished ones. Never running (live or crashed),
#: interrupted, or any status added later (queued, paused) unless named here.
PRUNABLE = (RunStatus.COMPLETED, RunStatus.ABORTED, RunStatus.FAILED)


def prune_statuses(statuses: Sequence[RunStatus | str]) -> list[str]:
    """The statuses as stored values; ValidationError for one prune never deletes."""
    out: list[str] = []
    for status in statuses:
        value = str(status)
        if value not in PRUNABLE:
            allowed = ", ".join(PRUNABLE)
            raise ValidationError(f"prune deletes finished runs only ({allowed}), not {value!r}")
        if value not in out:
            out.append(value)
    if not out:
        raise ValidationError("prune needs at least one status")
    return out


def prune_limits(older_than: timedelta, keep_last: int, limit: int) -> None:
    if older_than < timedelta(0):
        raise ValidationError(f"older_than must not be negative, not {older_than}")
    if keep_last < 0:
        raise ValidationError(f"keep_last must be 0 or more, not {keep_last}")
    if limit < 1:
        raise ValidationError(f"a prune batch takes at least one run, not {limit}")


def prune_boundary(
    runs: Iterable[RunState], statuses: Sequence[str], keep_last: int
) -> tuple[float, str] | None:
    """(finished_at timestamp, run id) of the ``keep_last``-th newest finished run of
    ``statuses``: prunable runs sort strictly below it. None when fewer runs finished."""
    keys = sorted(
        (
            (run.finished_at.timestamp(), run.run_id)
            for run in runs
            if run.status.value in statuses and run.finished_at is not None
        ),
        reverse=True,
    )
    return keys[keep_last - 1] if len(keys) >= keep_last else None


def prunable(
    run: RunState,
    statuses: Sequence[str],
    cutoff: float,
    boundary: tuple[float, str] | None,
    newest_event_run: str | None,
) -> bool:
    """Whether ``run`` may be deleted: the re-check every store's delete makes. The run that
    holds the newest event stays (SQLite would hand its event ids out again)."""
    if run.status.value not in statuses or run.finished_at is None:
        return False
    if run.run_id == newest_event_run:
        return False
    finished = run.finished_at.timestamp()
    return finished < cutoff and (boundary is None or (finished, run.run_id) < boundary)


# -- the queue and recovery (pool workers) ---------------------------------------------------

#: Restarts recovery makes of one crashed run before it ends the run failed instead.
DEFAULT_RESTART_BUDGET = 3


def queue_order(run: RunState) -> tuple[datetime, str]:
    """The order in which queued runs are claimed: oldest first, then by id."""
    return (run.created_at, run.run_id)


def restarted_event(run: RunState, owner: Owner, restarts: int, budget: int) -> NewEvent:
    """A crashed run taken up again by recovery: its ``restarts``-th restart of ``budget``."""
    return NewEvent(
        kind=EventKind.RUN_RESTARTED,
        data={
            "restart": restarts,
            "budget": budget,
            "epoch": run.epoch,
            "host": owner.host,
            "pid": owner.pid,
            "phase": run.phase.value,
            "iteration": run.iteration,
            "task_id": run.current_task_id,
        },
    )


def budget_spent(run_id: str, restarts: int) -> str:
    """The error of a crashed run that recovery ends instead of restarting."""
    return (
        f"run {run_id} crashed again after {restarts} automatic restart"
        f"{'s' if restarts != 1 else ''}: restart budget spent, not restarted"
    )


def budget_failed_event(run: RunState, reason: str) -> NewEvent:
    return NewEvent(
        kind=EventKind.RUN_FAILED,
        data={
            "error": reason,
            "phase": run.phase.value,
            "iteration": run.iteration,
            "task_id": run.current_task_id,
        },
    )


def check_budget(budget: int) -> None:
    if budget < 0:
        raise ValidationError(f"a restart budget is 0 or more, not {budget}")
