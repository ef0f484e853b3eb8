"""Issue 9, items 7, 11, 12: the status shown is never a false ``crashed``, the readers and
the writers agree on who holds a run, a pending abort is never dropped, and a lock held past
the busy timeout interrupts a run instead of failing it. Real SQLite files, real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from loopkit import acli_here, kill_child, read_run, start_cli, wait_pid_gone, wait_until

from nanoagent_core.actions import new_run
from nanoagent_core.errors import DatabaseBusyError
from nanoagent_core.models import Owner, Phase, RunState, RunStatus, utc_now
from nanoagent_core.procinfo import host_name, process_start_time
from nanoagent_core.protocols import Step
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.status import ShownStatus, held_by_live_worker, shown_status, verdict, verdicts
from nanoagent_core.worker import resume_run
from nanoagent_tui.live import LiveData

GOAL = "write a haiku about the sea"


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A real live process to stand for a worker (it only sleeps)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait()


def owner_of(proc: subprocess.Popen[bytes]) -> Owner:
    started = process_start_time(proc.pid)
    assert started is not None
    return Owner(host=host_name(), pid=proc.pid, pid_started=started)


async def claimed_by(
    store: SQLiteStore, proc: subprocess.Popen[bytes], run_id: str, lease: float
) -> RunState:
    await store.create_run(new_run(run_id, GOAL, claim_grace=0))
    return await store.claim_run(run_id, owner_of(proc), expected_epoch=0, lease_seconds=lease)


def kill_and_reap(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()  # reaped: its pid is gone, not a zombie


async def complete(store: SQLiteStore, run: RunState) -> RunState:
    step = Step(
        phase=Phase.DONE, iteration=run.iteration, status=RunStatus.COMPLETED, result="done"
    )
    return await store.commit_step(run.run_id, step, epoch=run.epoch)


# -- item 7: a row read before the worker's last commit is never shown crashed -------------


async def test_row_read_before_the_final_commit_is_not_shown_crashed(
    db: str, child: subprocess.Popen[bytes]
) -> None:
    store = await SQLiteStore.open(db)
    try:
        claimed = await claimed_by(store, child, "short", lease=600)
        stale = (await store.list_runs())[0]  # a reader reads the row: running
        assert stale.status is RunStatus.RUNNING
        await complete(store, claimed)  # the worker commits completion ...
        kill_and_reap(child)  # ... and exits, before the reader judges its old row
        assert shown_status(stale) is ShownStatus.CRASHED  # the naive judgement: wrong
        [(row, shown)] = await verdicts(store, [stale])
        assert shown is ShownStatus.COMPLETED
        assert row.status is RunStatus.COMPLETED
        # a worker that really died is crashed: its row, read after, still says running
        await store.create_run(new_run("dead", GOAL, claim_grace=0))
        gone = Owner(host=host_name(), pid=child.pid, pid_started=1.0)
        dead = await store.claim_run("dead", gone, expected_epoch=0, lease_seconds=600)
        assert (await verdict(store, dead))[1] is ShownStatus.CRASHED
    finally:
        await store.close()


async def test_dashboard_shows_crashed_only_after_reading_the_row_again(
    db: str, child: subprocess.Popen[bytes]
) -> None:
    store = await SQLiteStore.open(db)
    live = LiveData(db)
    try:
        claimed = await claimed_by(store, child, "short", lease=600)
        await live.poll(utc_now())
        stale = live.runs["short"]
        assert live.word(stale, utc_now()) == ShownStatus.RUNNING
        await complete(store, claimed)
        kill_and_reap(child)
        # between two polls the screen redraws from the row it has: not crashed
        assert live.word(stale, utc_now()) != ShownStatus.CRASHED
        assert all(word != ShownStatus.CRASHED for _, word in live.visible(utc_now(), live_sort()))
        await live.poll(utc_now())
        assert live.word(live.runs["short"], utc_now()) == ShownStatus.COMPLETED
    finally:
        await live.close()
        await store.close()


async def test_dashboard_shows_a_dead_worker_crashed_after_one_poll(
    db: str, child: subprocess.Popen[bytes]
) -> None:
    store = await SQLiteStore.open(db)
    live = LiveData(db)
    try:
        await claimed_by(store, child, "dead", lease=600)
        await live.poll(utc_now())
        kill_and_reap(child)
        await live.poll(utc_now())  # idle: nothing was written, the row is read again
        assert live.word(live.runs["dead"], utc_now()) == ShownStatus.CRASHED
        assert live.shown_counts(utc_now()) == {ShownStatus.CRASHED.value: 1}
    finally:
        await live.close()
        await store.close()


def live_sort():
    from nanoagent_tui.live import SortMode

    return SortMode.ACTIVITY


# -- item 12: one predicate; a live worker past its lease still holds its run ---------------


async def test_live_worker_past_its_lease_is_held_for_list_and_resume(
    db: str, env: dict[str, str], child: subprocess.Popen[bytes]
) -> None:
    store = await SQLiteStore.open(db)
    try:
        run = await claimed_by(store, child, "slow", lease=0.001)
    finally:
        await store.close()
    assert run.lease_expires_at is not None
    lease = run.lease_expires_at

    async def tick() -> None:
        await asyncio.sleep(0)

    await wait_until(
        tick, lambda _: utc_now() > lease + timedelta(seconds=0.01), timeout=10, what="lease over"
    )
    assert held_by_live_worker(run)
    listed = await acli_here("list", "--json", "--db", db, env=env)
    assert listed.code == 0, listed
    assert json.loads(listed.out)[0]["status"] == "running"
    resumed = await acli_here("resume", "slow", "--db", db, env=env)
    assert resumed.code == 4, resumed
    assert "held by a live worker" in resumed.err
    shown = await acli_here("show", "slow", "--db", db, env=env)
    assert "waiting: no heartbeat committed" in shown.out.splitlines()[3], shown
    # frozen, it makes no progress: its (expired) lease decides, for both
    os.kill(child.pid, signal.SIGSTOP)
    await wait_until(tick, lambda _: not held_by_live_worker(run), timeout=10, what="stopped state")
    listed = await acli_here("list", "--json", "--db", db, env=env)
    assert json.loads(listed.out)[0]["status"] == "crashed"
    abort = await acli_here("abort", "slow", "--db", db, env=env)
    assert abort.code == 0, abort
    assert (await read_run(db, "slow")).status is RunStatus.ABORTED


class _Releasing(SQLiteStore):
    """The real store; when a commit gives up on the lock, the lock holder lets go (so the
    run's stop can be recorded) and the moment is noted. Ordering, not timing."""

    holder: sqlite3.Connection
    busy: int = 0
    seen_running: list[ShownStatus]

    async def commit_step(self, run_id: str, step: Step, *, epoch: int) -> RunState:
        try:
            return await super().commit_step(run_id, step, epoch=epoch)
        except DatabaseBusyError:
            self.busy += 1
            run = await self.get_run(run_id)  # readers still read (WAL)
            self.seen_running.append(shown_status(run))
            if self.holder.in_transaction:
                self.holder.execute("ROLLBACK")
            raise


async def test_lock_held_past_busy_timeout_interrupts_and_worker_shows_alive(db: str) -> None:
    setup = await SQLiteStore.open(db)
    await setup.create_run(new_run("locked", GOAL, options={"tasks": "3"}, claim_grace=0))
    await setup.close()
    store = await _Releasing.open(db, busy_timeout=0.05)
    assert isinstance(store, _Releasing)
    store.seen_running = []
    holder = sqlite3.connect(db, isolation_level=None)
    store.holder = holder
    try:
        first = True

        def on_claim(run: RunState, step: Step) -> None:
            nonlocal first
            if first:  # another process takes the write lock and keeps it
                first = False
                holder.execute("BEGIN IMMEDIATE")

        final = await resume_run(
            store, "locked", heartbeat=0.001, on_claim=on_claim, handle_signals=False
        )
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
        await store.close()
    assert store.busy == 1
    # while it waited on the lock (its lease long over) it was alive and shown so
    assert store.seen_running == [ShownStatus.RUNNING]
    assert final.status is RunStatus.INTERRUPTED, final.error
    assert final.error is not None
    assert "locked" in final.error
    assert shown_status(final) is ShownStatus.INTERRUPTED


def write_lock_free(db: str) -> bool:
    """True if nobody holds the database's write lock right now."""
    conn = sqlite3.connect(db, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return True


# -- item 11: an abort requested of a worker that died before acting on it -----------------


async def test_abort_pending_when_worker_was_killed_is_recorded_on_resume(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    options = ["--option", "tasks=3", "--option", "delay=0.2", "--option", "followups=0"]
    worker = await start_cli(
        "run", GOAL, "--db", db, "--run-id", "doomed", "--heartbeat", "30", *options, env=env
    )
    try:

        async def probe() -> RunState | None:
            try:
                return await read_run(db, "doomed")
            except Exception:  # not created yet
                return None

        await wait_until(
            probe, lambda r: r is not None and r.owner is not None, timeout=30, what="claimed"
        )
        # freeze it (it cannot act on the request), never while it holds the write lock
        for _ in range(200):
            kill_child(worker, signal.SIGSTOP)
            if await asyncio.to_thread(write_lock_free, db):
                break
            kill_child(worker, signal.SIGCONT)
            await asyncio.sleep(0.01)
        else:
            pytest.fail("could not freeze the worker outside a transaction")
        asked = await acli_here("abort", "doomed", "--db", db, env=env)
        assert asked.code == 0, asked
        assert "abort requested" in asked.out
        kill_child(worker, signal.SIGKILL)
        await worker.wait()
        await wait_pid_gone(worker.pid, timeout=30)
    finally:
        if worker.returncode is None:
            kill_child(worker, signal.SIGKILL)
            await worker.wait()
    listed = json.loads((await acli_here("list", "--json", "--db", db, env=env)).out)
    assert [(r["status"], r["abort_requested"]) for r in listed] == [("crashed", True)]
    resumed = await acli_here("resume", "doomed", "--db", db, env=env)
    assert resumed.code == 0, resumed
    shown = json.loads((await acli_here("show", "doomed", "--json", "--db", db, env=env)).out)
    kinds = [event["kind"] for event in shown["events"]]
    aborted = [e for e in shown["events"] if e["kind"] == "run_aborted"]
    assert len(aborted) == 1, kinds
    assert "before acting on it" in aborted[0]["data"]["reason"]
    # the request applied first; the resume then took up the aborted run
    assert kinds.index("run_aborted") < len(kinds) - 1 - kinds[::-1].index("run_claimed")
    assert shown["status"] == "completed"


async def test_tiny_heartbeat_list_and_resume_agree_on_a_live_worker(
    db: str, env: dict[str, str]
) -> None:
    options = ["--option", "tasks=50", "--option", "delay=5", "--option", "followups=0"]
    worker = await start_cli(
        "run", GOAL, "--db", db, "--run-id", "tiny", "--heartbeat", "0.001", *options, env=env
    )
    try:

        async def probe() -> RunState | None:
            try:
                return await read_run(db, "tiny")
            except Exception:  # not created yet
                return None

        await wait_until(
            probe, lambda r: r is not None and r.owner is not None, timeout=30, what="claimed"
        )
        for _ in range(3):  # its lease (3 ms) is over most of the time: the pid decides
            listed = json.loads((await acli_here("list", "--json", "--db", db, env=env)).out)
            resumed = await acli_here("resume", "tiny", "--db", db, env=env)
            assert worker.returncode is None  # still alive: both must say it holds the run
            assert listed[0]["status"] == "running", listed
            assert resumed.code == 4, resumed
    finally:
        kill_child(worker, signal.SIGKILL)
        await worker.wait()
    await wait_pid_gone(worker.pid, timeout=30)
    listed = json.loads((await acli_here("list", "--json", "--db", db, env=env)).out)
    assert listed[0]["status"] == "crashed"
