"""Cancelling a write mid-flight leaves the database whole and unlocked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

import pytest
from storekit import OWNER, Snapshot, new_run, snapshot, task

from nanoagent_core.models import Phase, RunState, RunStatus, TaskStatus
from nanoagent_core.protocols import NewEvent, Step, Store
from nanoagent_core.sqlite import SQLiteStore

BIG = 300  # tasks in the cancelled step: enough that its transaction takes a while


def big_step(iteration: int) -> Step:
    tasks = tuple(task(f"c{iteration}-{n}", status=TaskStatus.DONE) for n in range(BIG))
    return Step(
        phase=Phase.REFLECTING,
        iteration=iteration,
        current_task_id=tasks[-1].id,
        tasks=tasks,
        results={t.id: "x" * 200 for t in tasks},
        events=tuple(NewEvent(kind="task_done", data={"task_id": t.id}) for t in tasks),
    )


def assert_all_or_nothing(before: Snapshot, after: Snapshot, step: Step) -> bool:
    """True if the step is fully in ``after``, False if none of it is; fails if half."""
    if after == before:
        return False
    ids = {t.id for t in step.tasks}
    assert {t.id for t in after.tasks} == {t.id for t in before.tasks} | ids
    assert set(after.results) == set(before.results) | set(step.results)
    assert len(after.events) == len(before.events) + len(step.events)
    assert (after.run.phase, after.run.iteration) == (step.phase, step.iteration)
    assert after.run.tasks_total == len(after.tasks)
    return True


def begin_immediate_now(db: Path) -> None:
    """Another connection takes the write lock without waiting: fails if a lock is held."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def cancel_after(pending: asyncio.Task[RunState], hops: int) -> bool:
    """Cancel ``pending`` after ``hops`` turns of the event loop; True if the cancel landed
    (False if the write had already finished)."""
    for _ in range(hops):
        await asyncio.sleep(0)
    pending.cancel()
    try:
        await pending
    except asyncio.CancelledError:
        return True
    return False


@pytest.mark.parametrize("hops", [0, 1, 2, 5, 20])
async def test_cancelled_commit_is_all_or_nothing(store: Store, hops: int) -> None:
    """Cancelled after ``hops`` event-loop turns: the step is all there or not at all, and
    the same store then writes normally."""
    await store.create_run(new_run())
    run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    before = await snapshot(store, "run-1")
    step = big_step(1)
    pending = asyncio.create_task(store.commit_step("run-1", step, epoch=run.epoch))
    cancelled = await cancel_after(pending, hops)

    after = await snapshot(store, "run-1")  # queued behind the cancelled work, if any
    applied = assert_all_or_nothing(before, after, step)
    if hops == 0:  # cancelled before it ever ran
        assert (cancelled, applied) == (True, False)
    if not cancelled:
        assert applied
    if isinstance(store, SQLiteStore):
        begin_immediate_now(Path(store.location))
    ended = await store.commit_step(
        "run-1", Step(phase=Phase.DONE, iteration=2, status=RunStatus.COMPLETED), epoch=run.epoch
    )
    assert ended.status is RunStatus.COMPLETED


async def test_cancelled_while_waiting_for_the_lock(
    sqlite_store: SQLiteStore, db_path: Path
) -> None:
    """The commit is cancelled while it waits for another process's write lock: once that
    lock goes, the database holds the step whole or not at all, and no lock is left held."""
    store = sqlite_store
    await store.create_run(new_run())
    run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    before = await snapshot(store, "run-1")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        step = big_step(1)
        pending = asyncio.create_task(store.commit_step("run-1", step, epoch=run.epoch))
        assert await cancel_after(pending, 3)  # it cannot finish: the lock is taken
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # Another connection can take the write lock (waiting at most for the cancelled
    # transaction to finish on its thread: never for a lock that is left behind).
    waiter = sqlite3.connect(db_path, timeout=10, isolation_level=None)
    try:
        waiter.execute("BEGIN IMMEDIATE")
        waiter.execute("ROLLBACK")
    finally:
        waiter.close()
    after = await snapshot(store, "run-1")
    assert_all_or_nothing(before, after, step)
    begin_immediate_now(db_path)
    await store.save_task("run-1", task("next"), epoch=run.epoch)
    assert "next" in {t.id for t in await store.get_all_tasks("run-1")}


def open_files_under(folder: Path) -> list[str]:
    """The files below ``folder`` this process has open (Linux: /proc/self/fd)."""
    found: list[str] = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(f"{folder}{os.sep}"):
                found.append(target)
    return found


async def test_cancelled_open_leaves_no_lock(db_path: Path) -> None:
    """Cancelling the open of a fresh file (mid-migration, perhaps) leaves a file that
    opens normally afterwards, and no connection open behind it (a connect cancelled on
    its way left one open for the life of the process)."""
    for hops in range(6):
        path = db_path.with_name(f"fresh-{hops}.db")
        opening = asyncio.create_task(SQLiteStore.open(path))
        for _ in range(hops):
            await asyncio.sleep(0)
        opening.cancel()
        try:
            store = await opening
        except asyncio.CancelledError:
            pass
        else:  # it finished before the cancel landed
            await store.close()
        store = await SQLiteStore.open(path)
        try:
            await store.create_run(new_run())
        finally:
            await store.close()
        begin_immediate_now(path)
    assert open_files_under(db_path.parent) == []  # close() returns once it has closed
