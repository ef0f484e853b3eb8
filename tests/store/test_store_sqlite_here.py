"""Writes on the event loop's thread (synchronous NORMAL): no hop when the connection's thread
is idle and the write lock free; otherwise the hop, as before, in call order, never blocking
the loop on another connection's lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from storekit import OWNER, new_run, task

from nanoagent_core.models import Phase, RunState
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.sqlite.thread import NOT_HERE, ConnectionThread


def step(iteration: int, task_id: str) -> Step:
    return Step(
        phase=Phase.EXECUTING,
        iteration=iteration,
        current_task_id=task_id,
        tasks=(task(task_id),),
        events=(NewEvent(kind="task_started", data={"task_id": task_id}),),
    )


def statement_threads(store: SQLiteStore) -> dict[str, set[int]]:
    """Which threads run the store's statements, by their first word (a trace callback on
    the store's own connection)."""
    seen: dict[str, set[int]] = {}
    conn: Any = store._db._conn  # pyright: ignore[reportPrivateUsage]

    def trace(statement: str) -> None:
        seen.setdefault(statement.split(None, 1)[0].upper(), set()).add(threading.get_ident())

    conn.set_trace_callback(trace)
    return seen


async def claimed(store: SQLiteStore) -> RunState:
    await store.create_run(new_run())
    return await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)


@pytest.mark.parametrize(("synchronous", "here"), [("NORMAL", True), ("FULL", False)])
async def test_a_step_at_normal_commits_without_a_hop(
    db_path: Path, synchronous: Any, here: bool
) -> None:
    store = await SQLiteStore.open(db_path, synchronous=synchronous)
    try:
        run = await claimed(store)
        seen = statement_threads(store)
        ended = await store.commit_step("run-1", step(1, "a"), epoch=run.epoch)
    finally:
        await store.close()
    assert ended.current_task_id == "a"
    assert ended.tasks_total == 1
    loop_thread = threading.get_ident()
    assert (seen["UPDATE"] == {loop_thread}) is here
    assert (seen["COMMIT"] == {loop_thread}) is here


async def test_a_held_lock_sends_the_write_to_the_thread_without_blocking_the_loop(
    db_path: Path,
) -> None:
    """Another connection holds the write lock: the step does not wait for it on the event
    loop's thread (the loop keeps turning), it waits on the store's thread and commits once
    the lock goes."""
    store = await SQLiteStore.open(db_path)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        run = await claimed(store)
        seen = statement_threads(store)
        blocker.execute("BEGIN IMMEDIATE")
        pending = asyncio.create_task(store.commit_step("run-1", step(1, "a"), epoch=run.epoch))
        for _ in range(50):  # the loop turns while the step waits for the lock
            await asyncio.sleep(0)
        assert not pending.done()
        blocker.execute("ROLLBACK")
        ended = await asyncio.wait_for(pending, 30)
        assert ended.current_task_id == "a"
        assert threading.get_ident() not in seen["COMMIT"]  # it committed on the thread
        # the lock is free again: the next step runs here
        again = await store.commit_step("run-1", step(2, "b"), epoch=run.epoch)
        assert threading.get_ident() in seen["COMMIT"]
        assert (again.tasks_total, again.iteration) == (2, 2)
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
        await store.close()


async def test_busy_timeout_still_holds_on_the_thread(db_path: Path) -> None:
    """The connection idles at busy timeout 0 for writes run here; calls on its thread wait
    as long as asked (10 s by default)."""
    store = await SQLiteStore.open(db_path, busy_timeout=7.5)
    try:

        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA busy_timeout").fetchone()[0])

        assert await store._call(read) == 7500  # pyright: ignore[reportPrivateUsage]
        conn: Any = store._db._conn  # pyright: ignore[reportPrivateUsage]
        assert read(conn) == 0  # between calls, as write_now finds it
    finally:
        await store.close()


async def test_run_here_waits_for_a_job_handed_over_before_it() -> None:
    """Call order holds: while a job handed over is running (or queued), nothing runs here."""
    db = ConnectionThread()
    await db.connect(":memory:", uri=False)
    release = threading.Event()
    started = threading.Event()
    order: list[str] = []

    def slow(conn: sqlite3.Connection) -> None:
        started.set()
        assert release.wait(30)
        order.append("handed over")

    def quick(conn: sqlite3.Connection) -> str:
        order.append("here")
        return "ran"

    try:
        first = asyncio.create_task(db.run(slow))
        await asyncio.sleep(0)  # handed over
        assert db.run_here(quick) is NOT_HERE
        assert await asyncio.to_thread(started.wait, 30)
        assert db.run_here(quick) is NOT_HERE
        release.set()
        await first
        assert db.run_here(quick) == "ran"
        assert order == ["handed over", "here"]
    finally:
        release.set()
        await db.close()
    assert db.run_here(quick) is NOT_HERE  # closed
