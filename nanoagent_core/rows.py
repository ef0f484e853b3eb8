"""Rows read back from a database, turned into records: shared by the SQL stores.

Each store hands in how its time column reads back (SQLite: REAL seconds; PostgreSQL:
timestamptz). A row holding what this code never writes raises DamagedRowError, which the
store reports as a damaged database, never as a raw ValueError.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from nanoagent_core.models import Event, Owner, Phase, RunState, RunStatus, Task, TaskStatus

__all__ = [
    "DamagedRowError",
    "Row",
    "TimeReader",
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


@decoder
def run_from_row(row: Row, when: TimeReader) -> RunState:
    (run_id, goal, max_iterations, agent, agent_options, phase, iteration, current_task_id,
     status, created_at, updated_at, finished_at, owner_host, owner_pid, owner_pid_started,
     epoch, heartbeat_at, lease_expires_at, abort_requested_at, error, result,
     tasks_total, tasks_done) = row  # fmt: skip
    owner = (
        None
        if owner_host is None or owner_pid is None
        else Owner(host=owner_host, pid=owner_pid, pid_started=owner_pid_started or 0.0)
    )
    return RunState.model_construct(
        run_id=run_id,
        goal=goal,
        max_iterations=max_iterations,
        agent=agent,
        agent_options=json.loads(agent_options),
        phase=Phase(phase),
        iteration=iteration,
        current_task_id=current_task_id,
        status=RunStatus(status),
        created_at=when(created_at),
        updated_at=when(updated_at),
        finished_at=when(finished_at),
        owner=owner,
        epoch=epoch,
        heartbeat_at=when(heartbeat_at),
        lease_expires_at=when(lease_expires_at),
        abort_requested_at=when(abort_requested_at),
        error=error,
        result=result,
        tasks_total=tasks_total,
        tasks_done=tasks_done,
    )


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
