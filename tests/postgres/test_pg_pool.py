"""Pool workers on several "hosts" sharing one PostgreSQL queue: real ``nanoagent worker``
processes under different ``NANOAGENT_HOST`` identities. Claims use the database's clock;
an idle worker is woken by NOTIFY when a run is enqueued.

Waiting is on conditions (the database, lines a worker prints, process exits) with generous
bounds; no timing is asserted."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter

from pgkit import ahere, child_env, wait_for

from nanoagent_core.models import RunStatus
from nanoagent_core.postgres import PostgresStore

HEARTBEAT = "0.5"
BOUND = 120.0


async def enqueue(location: str, run_id: str, host: str, *options: str) -> None:
    """``nanoagent run --enqueue`` (in this process: what it prints and writes)."""
    done = await ahere(
        ["run", "compare three queues", "--enqueue", "--run-id", run_id, "--db", location,
         *[arg for option in options for arg in ("--option", option)]],
        host=host,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, run_id), done.stderr


async def start_pool(location: str, host: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nanoagent_tui.cli", "worker", "--db", location,
        "--heartbeat", HEARTBEAT, "--log-level", "INFO", *extra,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(host),
    )  # fmt: skip


async def ready_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), BOUND)
    assert b" ready: " in line, line
    return line.decode()


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """SIGTERM (drain), then the rest of its output and its exit status."""
    if proc.returncode is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), BOUND)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_pool_workers_on_two_hosts_share_the_queue_one_claim_per_run(
    store: PostgresStore, location: str
) -> None:
    ids = [f"shared-{n:02d}" for n in range(16)]
    for n, run_id in enumerate(ids):
        await enqueue(
            location, run_id, f"host-{'ab'[n % 2]}", "tasks=2", "delay=0.3", "followups=0"
        )
    pools = [
        await start_pool(location, host, "--concurrency", "6") for host in ("host-a", "host-b")
    ]
    try:
        for proc in pools:
            await ready_line(proc)

        async def all_done() -> bool:
            counts = await store.count_runs()
            return counts.get(RunStatus.COMPLETED, 0) == len(ids)

        await wait_for(all_done, timeout=BOUND, every=0.2, what="every queued run to complete")
    finally:
        outcomes = [await stop(proc) for proc in pools]
    assert [code for code, _, _ in outcomes] == [0, 0], [err for _, _, err in outcomes]
    hosts: Counter[str] = Counter()
    for run_id in ids:
        claims = [e.data for e in await store.read_events(run_id=run_id) if e.kind == "run_claimed"]
        assert len(claims) == 1, claims  # exactly one winner per run
        hosts[claims[0]["host"]] += 1
        assert (await store.get_run(run_id)).status is RunStatus.COMPLETED
    assert sum(hosts.values()) == len(ids)
    assert set(hosts) <= {"host-a", "host-b"}


async def test_an_idle_pool_worker_is_woken_by_notify_when_a_run_is_enqueued(
    store: PostgresStore, location: str
) -> None:
    # It looks at the queue once an hour: only the notification can wake it in time.
    pool = await start_pool(location, "host-a", "--poll", "3600")
    try:
        line = await ready_line(pool)
        assert "listening for queued runs" in line, line
        await enqueue(location, "woken", "host-b", "tasks=1", "delay=0", "followups=0")

        async def completed() -> bool:
            return (await store.get_run("woken")).status is RunStatus.COMPLETED

        await wait_for(completed, timeout=BOUND, every=0.1, what="the enqueued run to complete")
    finally:
        code, out, err = await stop(pool)
    assert code == 0, err
    assert "woken by notification 1" in out, out  # exactly the one enqueue's NOTIFY
    assert "woken by a queue notification" in err, err
    claims = [e.data for e in await store.read_events(run_id="woken") if e.kind == "run_claimed"]
    assert [(c["host"], c["pid"]) for c in claims] == [("host-a", pool.pid)]


async def test_a_pool_worker_on_another_host_recovers_a_run_whose_worker_was_killed(
    store: PostgresStore, location: str
) -> None:
    # 6 bodies of 2 s: the run cannot finish between the check below and the SIGKILL
    await enqueue(location, "lost", "host-a", "tasks=6", "delay=2", "followups=0")
    first = await start_pool(location, "host-a")
    await ready_line(first)

    async def going() -> bool:
        run = await store.get_run("lost")
        return run.owner is not None and run.owner.host == "host-a" and run.tasks_done >= 1

    try:
        await wait_for(going, timeout=BOUND, what="host-a's pool to get going")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
    # From host-b the pid tells nothing: only the lease, by the database's clock, frees it.
    second = await start_pool(location, "host-b", "--recover")
    try:
        await ready_line(second)

        async def completed() -> bool:
            return (await store.get_run("lost")).status is RunStatus.COMPLETED

        await wait_for(completed, timeout=BOUND, every=0.1, what="the run to be recovered")
    finally:
        code, out, err = await stop(second)
    assert code == 0, err
    assert "recovered 1" in out, out
    events = await store.read_events(run_id="lost")
    restarts = [e.data for e in events if e.kind == "run_restarted"]
    assert [(r["restart"], r["host"]) for r in restarts] == [(1, "host-b")]
    claims = [e.data["host"] for e in events if e.kind == "run_claimed"]
    assert claims == ["host-a", "host-b"]
