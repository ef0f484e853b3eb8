"""Rows read back from a database, turned into records: shared by the SQL stores.

Each store hands in how its time column reads back (SQLite: REAL seconds; PostgreSQL:
timestamptz). A task or event row holding what this code never writes raises DamagedRowError,
which the store reports as a damaged database, never as a raw ValueError; a run row is read
as far as it can be and flagged ``damaged`` (see run_from_row).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from nanoagent_core.approvals import ApprovalRequest, Decision
from nanoagent_core.models import (
    Attempt,
    Event,
    ModelCall,
    Owner,
    PauseReason,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
)

__all__ = [
    "DamagedRowError",
    "Row",
    "TimeReader",
    "approval_from_row",
    "attempt_from_row",
    "call_from_row",
    "decoder",
    "event_from_row",
    "run_from_row",
    "task_from_row",
    "task_params",
]

T = TypeVar("T")
Row = tuple[Any, ...]
#: How a store's time column reads back as an aware UTC datetime (None stays None).
TimeReader = Callable[[Any], datetime | None]


class DamagedRowError(Exception):
    """A row that the database read back fine but that holds what this code never writes."""


def decoder(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def decode(*args: Any) -> T:
        try:
            return fn(*args)
        except (ValueError, TypeError, AttributeError, ArithmeticError, OSError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise DamagedRowError(f"unreadable row: {detail}") from None

    return decode


def run_from_row(row: Row, when: TimeReader) -> RunState:
    """The run a row holds. A field holding what this code never writes does not make the
    run unreadable: it gets a default and the run is flagged ``damaged`` with the reason, so
    one bad row does not make a whole listing (or dashboard) unreadable. Writers refuse a
    damaged run (status.check_readable)."""
    try:
        (run_id, goal, max_iterations, agent, agent_options, phase, iteration, current_task_id,
         status, created_at, updated_at, finished_at, owner_host, owner_pid, owner_pid_started,
         epoch, heartbeat_at, lease_expires_at, abort_requested_at, error, result,
         tasks_total, tasks_done, requests, tokens_in, tokens_out, cost_usd,
         cost_unknown, pause_reason, pause_detail, max_tokens, max_cost_usd) = row  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise DamagedRowError(f"unreadable row: {_clip(exc)}") from None
    problems: list[str] = []

    def read(name: str, fn: Callable[[], T], fallback: T, why: str | None = None) -> T:
        # ``why`` replaces messages that would quote the stored value (enums, pydantic).
        try:
            return fn()
        except (ValueError, TypeError, AttributeError, ArithmeticError, OSError) as exc:
            problems.append(f"{name}: {why or _clip(exc)}")
            return fallback

    def text(name: str, value: Any) -> str:
        return read(name, lambda: _str(value), str(value))

    def number(name: str, value: Any) -> int:
        return read(name, lambda: _int(value), 0)

    def moment(name: str, value: Any) -> datetime | None:
        return read(name, lambda: when(value), None)

    owner = (
        None
        if owner_host is None or owner_pid is None
        else read(
            "owner",
            lambda: Owner(
                host=_str(owner_host),
                pid=_int(owner_pid),
                pid_started=float(owner_pid_started or 0.0),
            ),
            None,
            "not a valid owner",
        )
    )
    created = moment("created_at", created_at) or _EPOCH
    return RunState.model_construct(
        run_id=text("run_id", run_id),
        goal=text("goal", goal),
        max_iterations=number("max_iterations", max_iterations),
        agent=text("agent", agent),
        agent_options=read("agent_options", lambda: _options(agent_options), {}),
        phase=read("phase", lambda: Phase(phase), Phase.PLANNING, "not a known phase"),
        iteration=number("iteration", iteration),
        current_task_id=current_task_id if isinstance(current_task_id, str) else None,
        status=read("status", lambda: RunStatus(status), RunStatus.FAILED, "not a known status"),
        created_at=created,
        updated_at=moment("updated_at", updated_at) or created,
        finished_at=moment("finished_at", finished_at),
        owner=owner,
        epoch=number("epoch", epoch),
        heartbeat_at=moment("heartbeat_at", heartbeat_at),
        lease_expires_at=moment("lease_expires_at", lease_expires_at),
        abort_requested_at=moment("abort_requested_at", abort_requested_at),
        error=error if error is None or isinstance(error, str) else str(error),
        result=result if result is None or isinstance(result, str) else str(result),
        tasks_total=number("tasks_total", tasks_total),
        tasks_done=number("tasks_done", tasks_done),
        requests=number("requests", requests),
        tokens_in=number("tokens_in", tokens_in),
        tokens_out=number("tokens_out", tokens_out),
        cost_usd=read("cost_usd", lambda: _cost(cost_usd), None),
        cost_unknown=number("cost_unknown", cost_unknown),
        pause_reason=read(
            "pause_reason", lambda: _reason(pause_reason), None, "not a known pause reason"
        ),
        pause_detail=pause_detail
        if pause_detail is None or isinstance(pause_detail, str)
        else str(pause_detail),
        max_tokens=read(
            "max_tokens", lambda: None if max_tokens is None else _int(max_tokens), None
        ),
        max_cost_usd=read("max_cost_usd", lambda: _cost(max_cost_usd), None),
        damaged="; ".join(problems) or None,
    )


_EPOCH = datetime.fromtimestamp(0, UTC)


def _clip(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"holds {type(value).__name__}, not text")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"holds {type(value).__name__}, not an integer")
    return value


def _cost(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"holds {type(value).__name__}, not a number")
    return float(value)


def _reason(value: Any) -> PauseReason | None:
    return None if value is None else PauseReason(_str(value))


def _options(raw: Any) -> dict[str, str]:
    try:
        value = json.loads(_str(raw))
    except json.JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str)
        for k, v in value.items()  # pyright: ignore[reportUnknownVariableType]
    ):
        raise ValueError("not an object of text values")
    return value  # pyright: ignore[reportUnknownVariableType]


@decoder
def task_from_row(row: Row) -> Task:
    task_id, description, status, priority, result, attempts, failures, error, seq = row
    return Task.model_construct(
        id=task_id,
        description=description,
        status=TaskStatus(status),
        priority=priority,
        result=result,
        attempts=attempts,
        failures=failures,
        error=error,
        seq=seq,
    )


@decoder
def call_from_row(row: Row) -> ModelCall:
    """A planner or reflector journal row (columns as CALL_COLUMNS of the SQL stores)."""
    (role, iteration, call, outcome, messages, model, requests, tokens_in, tokens_out,
     cost_usd, seconds) = row  # fmt: skip
    return ModelCall.model_construct(
        role=_str(role),
        iteration=_int(iteration),
        call=_int(call),
        outcome=_str(outcome),
        messages=None if messages is None else _str(messages),
        model=None if model is None else _str(model),
        requests=_int(requests),
        tokens_in=_int(tokens_in),
        tokens_out=_int(tokens_out),
        cost_usd=_cost(cost_usd),
        seconds=float(seconds),
    )


def attempt_from_row(row: Row) -> Attempt:
    (task_id, attempt, outcome, messages, model, requests, tokens_in, tokens_out, cost_usd,
     seconds) = row  # fmt: skip
    return Attempt.model_construct(
        task_id=_str(task_id),
        attempt=_int(attempt),
        outcome=_str(outcome),
        messages=None if messages is None else _str(messages),
        model=None if model is None else _str(model),
        requests=_int(requests),
        tokens_in=_int(tokens_in),
        tokens_out=_int(tokens_out),
        cost_usd=_cost(cost_usd),
        seconds=float(seconds),
    )


@decoder
def event_from_row(row: Row, when: TimeReader) -> Event:
    event_id, run_id, ts, kind, data = row
    return Event.model_construct(
        id=event_id, run_id=run_id, ts=when(ts), kind=kind, data=json.loads(data)
    )


def task_params(run_id: str, task: Task) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task_id": task.id,
        "description": task.description,
        "status": task.status.value,
        "priority": task.priority,
        "result": task.result,
        "attempts": task.attempts,
        "failures": task.failures,
        "error": task.error,
    }


def task_upserts(run_id: str, tasks: Iterable[Task]) -> tuple[list[dict[str, Any]], list[str], int]:
    """What upserting ``tasks`` writes: one parameter set per distinct id (the last of each id
    wins, in order of first appearance), those ids, and how many of them are done (for the
    run's task counters)."""
    latest = {task.id: task for task in tasks}
    done = sum(task.status is TaskStatus.DONE for task in latest.values())
    return [task_params(run_id, task) for task in latest.values()], list(latest), done


def approval_from_row(row: Row, when: TimeReader) -> ApprovalRequest:
    """An approval request row (sql APPROVAL_COLUMNS order)."""
    try:
        (request_id, run_id, task_id, attempt, what, arguments, why, digest, decision, reason,
         requested_at, decided_at, messages) = row  # fmt: skip
        asked = when(requested_at)
        if asked is None:
            raise ValueError("an approval request without its time")
        return ApprovalRequest(
            id=request_id,
            run_id=run_id,
            task_id=task_id,
            attempt=int(attempt),
            what=what,
            arguments=arguments,
            why=why,
            digest=digest,
            decision=Decision(decision),
            reason=reason,
            requested_at=asked,
            decided_at=when(decided_at),
            messages=messages,
        )
    except (TypeError, ValueError) as exc:
        raise DamagedRowError(f"unreadable approval row: {_clip(exc)}") from None
