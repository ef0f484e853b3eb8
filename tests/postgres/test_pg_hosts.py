"""Workers on several "hosts" sharing one PostgreSQL schema: real worker processes started
by the ``nanoagent`` command under different ``NANOAGENT_HOST`` identities (``list``,
``abort`` and a foreground ``resume`` run in this process, as another host: pgkit.here).

Heartbeats are 0.3 s, so a lease lasts 0.9 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from datetime import timedelta

import pytest
from pgkit import ahere, cli, outcome, start_worker, terminate_backends, wait_for

from nanoagent_core.actions import new_run
from nanoagent_core.errors import RunBusyError
from nanoagent_core.models import Owner, Phase, RunState, RunStatus
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.status import ShownStatus, shown_status

HEARTBEAT = 0.3
LEASE = 3 * HEARTBEAT
GOAL = "Compare three ways to keep agent runs alive across machines"


def options(**extra: str) -> list[str]:
    pairs = {"tasks": "6", "delay": "0.15", "followups": "1", **extra}
    return [arg for key, value in pairs.items() for arg in ("--option", f"{key}={value}")]


async def finished(store: PostgresStore, run_id: str) -> RunState | None:
    run = await store.get_run(run_id)
    return run if run.status is not RunStatus.RUNNING else None


def reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def detach(location: str, run_id: str, host: str, *extra: str) -> None:
    done = cli(
        ["run", GOAL, "--run-id", run_id, *options(), "--heartbeat", str(HEARTBEAT),
         "--detach", "--db", location, *extra],
        host=host,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, run_id), done.stderr


async def test_killed_remote_worker_shows_crashed_and_resumes_elsewhere_identically(
    store: PostgresStore, location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    detach(location, "clean", "host-c")
    detach(location, "crash", "host-a")

    async def midway() -> RunState | None:
        run = await store.get_run("crash")
        going = run.owner is not None and run.phase is Phase.EXECUTING and run.tasks_done >= 2
        return run if going else None

    run = await wait_for(midway, what="the remote worker to get going")
    assert run.owner.host == "host-a"
    os.kill(run.owner.pid, signal.SIGKILL)

    monkeypatch.setenv("NANOAGENT_HOST", "host-b")  # this process now looks from host-b
    seen = await store.get_run("crash")
    assert seen.lease_expires_at is not None
    # From another host the pid tells nothing: running until the lease expires, crashed after
    # (both instants given, so neither check depends on how fast this test got here).
    before_expiry = seen.lease_expires_at - timedelta(milliseconds=1)
    assert shown_status(seen, before_expiry) is ShownStatus.RUNNING
    assert shown_status(seen, seen.lease_expires_at + timedelta(seconds=1)) is ShownStatus.CRASHED

    async def crashed() -> bool:
        return shown_status(await store.get_run("crash")) is ShownStatus.CRASHED

    await wait_for(crashed, what="the run to show crashed", every=0.01)
    listed = await ahere(["list", "--json", "--db", location], host="host-b")
    assert {r["run_id"]: r["status"] for r in json.loads(listed.stdout)}["crash"] == "crashed"

    resumed = await ahere(
        ["resume", "crash", "--heartbeat", str(HEARTBEAT), "--db", location], host="host-b"
    )
    assert resumed.returncode == 0, resumed.stderr
    await wait_for(lambda: finished(store, "clean"), what="the clean run to finish")
    assert await outcome(store, "crash") == await outcome(store, "clean")
    crash = await store.get_run("crash")
    assert (crash.status, crash.epoch) == (RunStatus.COMPLETED, 2)
    claims = [
        e.data["host"] for e in await store.read_events(run_id="crash") if e.kind == "run_claimed"
    ]
    assert claims == ["host-a", "host-b"]


async def test_frozen_remote_worker_is_fenced_after_takeover(
    store: PostgresStore, location: str
) -> None:
    run = new_run("frozen", GOAL, options={"tasks": "30", "delay": "0.1"}, heartbeat=HEARTBEAT)
    await store.create_run(run)
    worker = start_worker(location, "frozen", host="host-a", heartbeat=HEARTBEAT)
    try:

        async def going() -> RunState | None:
            current = await store.get_run("frozen")
            return current if current.tasks_done >= 1 else None

        held = await wait_for(going, what="the worker to get going")
        os.kill(worker.pid, signal.SIGSTOP)
        taker = Owner(host="host-b", pid=os.getpid(), pid_started=0.0)

        async def take_over() -> RunState | None:
            try:
                return await store.claim_run(
                    "frozen", taker, expected_epoch=held.epoch, lease_seconds=60
                )
            except RunBusyError:  # while the frozen worker's lease lasts; any other error fails
                return None

        took = await wait_for(take_over, what="the lease to expire", every=0.05)
        assert took.epoch == held.epoch + 1
        before = await store.get_run_detail("frozen"), await store.read_events(run_id="frozen")
        os.kill(worker.pid, signal.SIGCONT)
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 4, err  # LeaseLostError: it stopped
        assert "lease" in err
        after = await store.get_run_detail("frozen"), await store.read_events(run_id="frozen")
        assert after == before  # it wrote nothing after the takeover
    finally:
        with_cont = worker.poll() is None
        if with_cont:
            os.kill(worker.pid, signal.SIGCONT)
        reap(worker)


async def test_dropped_connections_mid_run_lose_nothing(
    store: PostgresStore, location: str, pg_url: str
) -> None:
    """The worker's server sessions are terminated again and again while it runs: it
    reconnects and goes on; nothing committed is lost, nothing is applied twice, and the
    outcome is a clean run's."""
    # 9 bodies of 0.4 s: the run lasts 3.6 s of wall time at least, however loaded the
    # machine, while this test cuts the worker's sessions every 0.2 s
    opts = {"tasks": "8", "delay": "0.4", "followups": "1"}
    for run_id in ("dropped", "reference"):
        await store.create_run(new_run(run_id, GOAL, options=opts, heartbeat=HEARTBEAT))
    reference = start_worker(location, "reference", host="host-c", heartbeat=HEARTBEAT)
    worker = start_worker(location, "dropped", host="host-a", heartbeat=HEARTBEAT)
    try:
        # from the start: the worker's open, its claim and its steps all meet dead sessions
        terminated = 0
        seen: set[int] = set()
        while worker.poll() is None:
            seen.update(e.id for e in await store.read_events(run_id="dropped"))
            terminated += terminate_backends(pg_url, f"nanoagent/{worker.pid}")
            await asyncio.sleep(0.2)
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        assert terminated >= 1  # the cuts really met the worker (how many: the machine's load)
        reference.communicate(timeout=30)
    finally:
        reap(worker)
        reap(reference)
    assert await outcome(store, "dropped") == await outcome(store, "reference")
    events = await store.read_events(run_id="dropped")
    assert seen <= {e.id for e in events}  # nothing committed was lost
    assert [e.id for e in await store.read_events(limit=100_000)] == list(
        range(1, len(await store.read_events(limit=100_000)) + 1)
    )
    assert [e.kind for e in events].count("run_claimed") == 1  # one worker did it all
    for kind in ("task_started", "task_done"):  # each applied once, retries or not
        per_task = [e.data["task_id"] for e in events if e.kind == kind]
        assert len(per_task) == len(set(per_task)) == 9, kind


async def test_abort_from_another_host_stops_the_worker(
    store: PostgresStore, location: str
) -> None:
    await store.create_run(
        new_run("abortme", GOAL, options={"tasks": "30", "delay": "0.2"}, heartbeat=HEARTBEAT)
    )
    worker = start_worker(location, "abortme", host="host-a", heartbeat=HEARTBEAT)
    try:

        async def executing() -> bool:
            return (await store.get_run("abortme")).phase is Phase.EXECUTING

        await wait_for(executing, what="the worker to start a task")
        asked = await ahere(["abort", "abortme", "--db", location], host="host-b")
        assert asked.returncode == 0, asked.stderr
        assert "abort requested" in asked.stdout
        worker.communicate(timeout=10)
        assert worker.returncode == 5  # aborted
    finally:
        reap(worker)
    run = await store.get_run("abortme")
    assert (run.status, run.owner) == (RunStatus.ABORTED, None)
