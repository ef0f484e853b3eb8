"""Helpers shared by the store tests.

A plain module (tests/ is not a package): pytest puts this directory on ``sys.path``, and
child processes started with the ``spawn`` method inherit that path, so the worker
functions below can be their targets. Nothing here carries a connection across processes:
every worker opens its own store.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from nanoagent_core.errors import RunBusyError
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
from nanoagent_core.sqlite import SQLiteStore

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


class Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> Any: ...


class Settable(Protocol):
    def is_set(self) -> bool: ...


class Putter(Protocol):
    def put(self, obj: Any) -> None: ...


# -- worker functions for child processes (spawn start method) -------------------------------

BARRIER_TIMEOUT = 60.0


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


def commit_worker(db: str, run_id: str, steps: int, barrier: Waitable, out: Putter) -> None:
    """Create and claim ``run_id``, then commit ``steps`` steps to it, each its own transaction."""

    async def main() -> None:
        store = await SQLiteStore.open(db)
        try:
            await store.create_run(new_run(run_id))
            run = await store.claim_run(
                run_id,
                Owner(host="test-host", pid=os.getpid(), pid_started=0.0),
                expected_epoch=0,
                lease_seconds=600,
            )
            barrier.wait(BARRIER_TIMEOUT)
            for i in range(steps):
                await store.commit_step(run_id, step_for(i), epoch=run.epoch)
        finally:
            await store.close()

    try:
        asyncio.run(main())
        out.put(("ok", run_id, ""))
    except BaseException:
        out.put(("error", run_id, traceback.format_exc()))


def reader_worker(db: str, barrier: Waitable, stop: Settable, out: Putter) -> None:
    """Read continuously until told to stop, checking what every snapshot shows.

    Tails the event log by id and checks it is gap-free; checks every listed run is
    self-consistent (a half-committed step would show more tasks than iterations).
    """

    async def main() -> dict[str, Any]:
        store = await SQLiteStore.open(db, read_only=True)
        last_id = 0
        seen = 0
        reads = 0
        reads_while_writing = 0
        problems: list[str] = []
        try:
            barrier.wait(BARRIER_TIMEOUT)
            while True:
                stopping = stop.is_set()
                for run in await store.list_runs(limit=1000):
                    if not run.tasks_total == run.tasks_done == run.iteration:
                        problems.append(
                            f"{run.run_id}: iteration {run.iteration} but tasks "
                            f"{run.tasks_total}/{run.tasks_done}"
                        )
                while True:
                    batch = await store.read_events(after_id=last_id, limit=500)
                    if not batch:
                        break
                    ids = [event.id for event in batch]
                    if ids != list(range(last_id + 1, last_id + 1 + len(ids))):
                        problems.append(f"gap after event {last_id}: {ids[:5]}...")
                    last_id = ids[-1]
                    seen += len(ids)
                reads += 1
                reads_while_writing += not stopping
                if stopping:
                    break
        finally:
            await store.close()
        return {
            "seen": seen,
            "last_id": last_id,
            "reads": reads,
            "reads_while_writing": reads_while_writing,
            "problems": problems[:20],
        }

    try:
        out.put(("ok", "reader", asyncio.run(main())))
    except BaseException:
        out.put(("error", "reader", traceback.format_exc()))


def claim_worker(db: str, run_ids: list[str], barrier: Waitable, out: Putter) -> None:
    """For each run, wait for every racer at the barrier, then try to claim it at epoch 0."""

    async def main() -> None:
        store = await SQLiteStore.open(db)
        owner = Owner(host="test-host", pid=os.getpid(), pid_started=0.0)
        try:
            for run_id in run_ids:
                barrier.wait(BARRIER_TIMEOUT)
                try:
                    run = await store.claim_run(run_id, owner, expected_epoch=0, lease_seconds=600)
                except RunBusyError:
                    out.put(("busy", run_id, os.getpid()))
                else:
                    out.put(("won", run_id, (os.getpid(), run.epoch)))
        finally:
            await store.close()

    try:
        asyncio.run(main())
    except BaseException:
        out.put(("error", "", traceback.format_exc()))


def open_worker(dbs: list[str], name: str, barrier: Waitable, out: Putter) -> None:
    """For each fresh path, wait for every racer, then open (create and migrate) it at once."""

    async def main() -> None:
        for db in dbs:
            barrier.wait(BARRIER_TIMEOUT)
            try:
                store = await SQLiteStore.open(db)
                try:
                    await store.create_run(new_run(name))
                finally:
                    await store.close()
            except BaseException:
                out.put(("error", db, traceback.format_exc()))
            else:
                out.put(("ok", db, name))

    asyncio.run(main())


def raw_counts(db: Path, table: str) -> dict[str, int]:
    """Rows per run in ``table``, counted by a plain sqlite3 connection."""
    conn = sqlite3.connect(db)
    try:
        query = f"SELECT run_id, count(*) FROM {table} GROUP BY run_id"
        return dict(conn.execute(query).fetchall())
    finally:
        conn.close()
