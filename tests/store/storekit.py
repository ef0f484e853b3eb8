"""Helpers shared by the store tests.

A plain module (tests/ is not a package) on ``sys.path`` (pytest's ``pythonpath``), so any
test directory can import it. The child-process workers are in prockit.py.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from nanoagent_core.models import (
    Event,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
    validated,
)
from nanoagent_core.protocols import NewEvent, Step, Store

E = TypeVar("E", bound=BaseException)


class Closable(Protocol):
    async def close(self) -> None: ...


async def assert_open_refused(
    opening: Awaitable[Closable], error: type[E], match: str | None = None
) -> E:
    """Await ``opening`` (a store's ``open``), which must raise ``error`` (whose text matches
    ``match``, a regular expression, if given); return the error.

    A store that opened anyway is closed before the test fails: inside a bare
    ``pytest.raises`` it would stay open and its connection thread would hang the interpreter
    at exit, so a failing refusal test would never end."""
    try:
        store = await opening
    except error as exc:
        if match is not None and not re.search(match, str(exc)):
            pytest.fail(f"{type(exc).__name__} {str(exc)!r} does not match {match!r}")
        return exc
    await store.close()
    pytest.fail(f"the store opened, where {error.__name__} was expected")


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OWNER = Owner(host="test-host", pid=4242, pid_started=17.0)
OTHER_OWNER = Owner(host="test-host", pid=4343, pid_started=18.0)


class FakeClock:
    """An injectable clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def new_run(run_id: str = "run-1", goal: str = "write a haiku", **fields: Any) -> RunState:
    return validated(RunState, run_id=run_id, goal=goal, max_iterations=10, **fields)


def task(task_id: str, priority: int = 5, **fields: Any) -> Task:
    return Task(id=task_id, description=f"do {task_id}", priority=priority, **fields)


@dataclass(frozen=True)
class Snapshot:
    """Everything a store holds about one run, plus the whole event log."""

    run: RunState
    tasks: list[Task]
    results: dict[str, str]
    events: list[Event]
    counts: dict[RunStatus, int] = field(default_factory=dict[RunStatus, int])


async def snapshot(store: Store, run_id: str) -> Snapshot:
    return Snapshot(
        run=await store.get_run(run_id),
        tasks=await store.get_all_tasks(run_id),
        results=await store.get_all_results(run_id),
        events=await store.read_events(limit=1_000_000),
        counts=await store.count_runs(),
    )


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def step_for(i: int) -> Step:
    """Step ``i`` of a writer: one finished task, its result and one event, all together."""
    tid = f"t{i:04d}"
    return Step(
        phase=Phase.EXECUTING,
        iteration=i + 1,
        current_task_id=tid,
        tasks=(Task(id=tid, description=f"task {i}", status=TaskStatus.DONE, attempts=1),),
        results={tid: f"result {i}"},
        events=(NewEvent(kind="task_done", data={"task_id": tid, "i": i}),),
    )


def raw_counts(db: Path, table: str) -> dict[str, int]:
    """Rows per run in ``table``, counted by a plain sqlite3 connection."""
    conn = sqlite3.connect(db)
    try:
        query = f"SELECT run_id, count(*) FROM {table} GROUP BY run_id"
        return dict(conn.execute(query).fetchall())
    finally:
        conn.close()
