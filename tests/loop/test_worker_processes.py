"""Real worker processes on a real SQLite file: abort (live and dead workers, finished runs),
two resumes racing, a worker frozen past its lease, SIGTERM / SIGINT, agents that are not
installed, and how fast a SIGKILLed worker shows as crashed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest
from loopkit import (
    Reaper,
    acli,
    acli_here,
    ashow_json,
    check_journal,
    gather_all,
    kill_child,
    option_args,
    read_journal,
    read_run,
    start_cli,
    wait_pid_gone,
    wait_until,
)

from nanoagent_core.errors import DatabaseError, RunNotFoundError
from nanoagent_core.launch import reap_workers, spawn_worker
from nanoagent_core.models import Owner, Phase, RunState, RunStatus
from nanoagent_core.procinfo import host_name
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.status import ShownStatus, shown_status
from nanoagent_core.worker import FAULT_KILL_AFTER_COMMIT

GOAL = "Keep the workers honest"


def run_cmd(db: str, run_id: str, options: dict[str, str], *extra: str) -> list[str]:
    return ["run", GOAL, "--db", db, "--run-id", run_id, *option_args(options), *extra]


async def in_flight(db: str, run_id: str, *, done: int = 0, timeout: float = 20) -> RunState:
    """Wait until a live worker holds ``run_id`` with a task body in flight."""

    async def probe() -> RunState | None:
        try:
            return await read_run(db, run_id)
        except (DatabaseError, RunNotFoundError):  # not created (or not migrated) yet
            return None

    def ok(run: RunState | None) -> bool:
        return (
            run is not None
            and run.owner is not None
            and run.phase is Phase.EXECUTING
            and run.tasks_done >= done
        )

    run = await wait_until(probe, ok, timeout=timeout, what=f"{run_id} executing")
    assert run is not None
    return run


def event_time(doc: dict[str, object], kind: str) -> datetime:
    events = doc["events"]
    assert isinstance(events, list)
    times = [datetime.fromisoformat(e["ts"]) for e in events if e["kind"] == kind]
    assert len(times) == 1, (kind, times)
    return times[0]


def one_line_error(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("nanoagent: ")
    return lines[0]


# -- abort -------------------------------------------------------------------------------------


async def test_abort_of_a_running_run_stops_the_body_in_flight(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    heartbeat = 0.5
    started = await acli(
        *run_cmd(db, "busy", {"tasks": "3", "delay": "30"}, "--detach"),
        "--heartbeat",
        str(heartbeat),
        env=env,
    )
    assert (started.code, started.out) == (0, "busy\n"), started
    run = await in_flight(db, "busy")
    assert run.owner is not None
    reaper.track(run.owner.pid)

    requested = await acli_here("abort", "busy", "--db", db, env=env)
    assert requested.code == 0, requested
    assert "abort requested" in requested.out

    async def probe() -> RunState:
        return await read_run(db, "busy")

    final = await wait_until(
        probe, lambda r: r.status is RunStatus.ABORTED, timeout=60, what="aborted"
    )
    doc = await ashow_json(db, "busy")
    # the worker's own record, on the database's clock (a figure, not a bound: bench/)
    latency = (event_time(doc, "run_aborted") - event_time(doc, "abort_requested")).total_seconds()
    print(f"\nabort latency: {latency:.3f}s recorded (heartbeat {heartbeat}s)")
    assert latency >= 0

    # it stopped the body in flight (30 s long) and says where it stopped
    aborted = next(e for e in doc["events"] if e["kind"] == "run_aborted")["data"]
    assert (aborted["phase"], aborted["iteration"], aborted["task_id"]) == (
        "executing",
        run.iteration,
        run.current_task_id,
    )
    assert not any(e["kind"] == "task_done" for e in doc["events"])
    assert (doc["status"], doc["abort_requested"], doc["worker_pid"]) == ("aborted", True, None)
    assert final.error is not None
    assert run.owner.pid is not None
    await wait_pid_gone(run.owner.pid, timeout=60)  # and the worker exited


async def test_aborted_foreground_run_exits_5_and_resume_completes_it(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "journal.log"
    options = {"tasks": "2", "followups": "0", "delay": "0.6", "log": str(log)}
    # a lease (3 heartbeats) far longer than the freeze below; the worker sees the request
    # in the row its next commit returns
    proc = await start_cli(*run_cmd(db, "fg", options, "--heartbeat", "10"), env=env)
    await in_flight(db, "fg")
    # freeze the worker while the abort is requested, so the request surely lands before
    # the run's end, however long `abort` takes to start
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        frozen = await read_run(db, "fg")
        assert (frozen.status, frozen.phase) == (RunStatus.RUNNING, Phase.EXECUTING), frozen
        requested = await acli_here("abort", "fg", "--db", db, env=env)
        assert requested.code == 0, requested
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 5, out
    assert out.decode().splitlines()[-1].startswith("run fg aborted")

    resumed = await acli_here("resume", "fg", "--db", db, env=env)
    assert resumed.code == 0, resumed
    doc = await ashow_json(db, "fg")
    assert doc["status"] == "completed"
    assert [t["status"] for t in doc["tasks"]] == ["done", "done"]
    check_journal(doc, read_journal(log, "fg"))


async def test_abort_of_a_dead_run_is_immediate(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    started = await acli(*run_cmd(db, "dead", {"delay": "30"}, "--detach"), env=env)
    assert started.code == 0, started
    run = await in_flight(db, "dead")
    assert run.owner is not None
    reaper.track(run.owner.pid)
    os.kill(run.owner.pid, signal.SIGKILL)
    await wait_pid_gone(run.owner.pid, timeout=5)

    result = await acli_here("abort", "dead", "--db", db, env=env)
    after = await read_run(db, "dead")  # read once, right away: no waiting
    assert result.code == 0, result
    assert result.out.strip() == "run dead aborted"
    assert (after.status, after.owner) == (RunStatus.ABORTED, None)
    assert after.epoch == run.epoch + 1  # any zombie worker is fenced off
    doc = await ashow_json(db, "dead")
    aborted = next(e for e in doc["events"] if e["kind"] == "run_aborted")["data"]
    assert (aborted["phase"], aborted["task_id"]) == ("executing", run.current_task_id)


async def test_abort_of_a_finished_or_unknown_run_is_refused(db: str, env: dict[str, str]) -> None:
    done = await acli_here(*run_cmd(db, "done", {"tasks": "1", "delay": "0"}), env=env)
    assert done.code == 0, done
    refused = await acli_here("abort", "done", "--db", db, env=env)
    unknown = await acli_here("abort", "nosuch", "--db", db, env=env)
    assert refused.code == 2
    assert "already finished" in one_line_error(refused.err)
    assert unknown.code == 3
    assert "nosuch" in one_line_error(unknown.err)
    assert (await read_run(db, "done")).status is RunStatus.COMPLETED
    # and an aborted run, once more
    store = await SQLiteStore.open(db)
    try:
        await store.create_run(RunState(run_id="gone", goal=GOAL, max_iterations=5))
        first = await acli_here("abort", "gone", "--db", db, env=env)
        again = await acli_here("abort", "gone", "--db", db, env=env)
    finally:
        await store.close()
    assert first.code == 0, first
    assert again.code == 2, again
    one_line_error(again.err)


# -- resume race -------------------------------------------------------------------------------


@pytest.mark.parametrize("racers", [2, 4])
async def test_racing_resumes_exactly_one_proceeds(
    db: str, env: dict[str, str], tmp_path: Path, racers: int
) -> None:
    log = tmp_path / "journal.log"
    options = {"tasks": "5", "followups": "0", "delay": "0.4", "log": str(log)}
    crash = {**env, FAULT_KILL_AFTER_COMMIT: "2"}
    killed = await acli(*run_cmd(db, "race", options), env=crash)
    assert killed.code == -signal.SIGKILL, killed
    assert (await ashow_json(db, "race"))["status"] == "crashed"

    results = await gather_all(
        *(acli("resume", "race", "--db", db, "--heartbeat", "0.5", env=env) for _ in range(racers))
    )
    # exactly one racer claims the run (its output has the claim line); every other one is
    # refused as busy (4) or, starting late on a loaded machine, finds the run already
    # completed and does nothing (0, no claim)
    winners = [r for r in results if "run_claimed" in r.out]
    assert len(winners) == 1, results
    assert winners[0].code == 0, results
    for other in (r for r in results if r is not winners[0]):
        assert other.code in (0, 4), results
        if other.code == 4:
            assert "race" in one_line_error(other.err)
    doc = await ashow_json(db, "race")
    kinds = [e["kind"] for e in doc["events"]]
    assert doc["status"] == "completed"
    assert kinds.count("run_claimed") == 2  # the crashed worker's claim and the winner's
    assert kinds.count("run_completed") == 1
    assert kinds.count("planned") == 1
    check_journal(doc, read_journal(log, "race"))


async def test_resume_is_refused_while_a_live_worker_holds_the_run(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    started = await acli(*run_cmd(db, "held", {"delay": "30"}, "--detach"), env=env)
    assert started.code == 0, started
    run = await in_flight(db, "held")
    assert run.owner is not None
    reaper.track(run.owner.pid)
    busy = await acli_here("resume", "held", "--db", db, env=env)
    busy_detached = await acli_here("resume", "held", "--detach", "--db", db, env=env)
    assert (busy.code, busy_detached.code) == (4, 4), (busy, busy_detached)
    assert f"pid {run.owner.pid}" in one_line_error(busy.err)
    one_line_error(busy_detached.err)
    after = await read_run(db, "held")
    assert (after.epoch, after.owner) == (run.epoch, run.owner)


# -- lease lost --------------------------------------------------------------------------------


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


async def test_worker_frozen_past_its_lease_writes_nothing_after_takeover(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    heartbeat = 0.2
    log = tmp_path / "journal.log"
    options = {"tasks": "4", "followups": "0", "delay": "0.3", "log": str(log)}
    first = await start_cli(*run_cmd(db, "frozen", options, "--heartbeat", str(heartbeat)), env=env)
    try:
        run = await in_flight(db, "frozen", done=1)
        assert run.owner is not None
        assert run.owner.pid == first.pid
        # freeze it, but never while it holds the write lock (that would block everyone)
        for _ in range(20):
            kill_child(first, signal.SIGSTOP)
            if await asyncio.to_thread(write_lock_free, db):
                break
            kill_child(first, signal.SIGCONT)
            await asyncio.sleep(0.05)
        else:
            pytest.fail("could not freeze the worker outside a transaction")

        async def probe() -> RunState:
            return await read_run(db, "frozen")

        stale = await wait_until(
            probe,
            lambda r: shown_status(r) is ShownStatus.CRASHED,  # lease (3 heartbeats) over
            timeout=10 * heartbeat,
            what="lease expired",
        )
        assert stale.epoch == run.epoch

        second = await acli("resume", "frozen", "--db", db, "--heartbeat", str(heartbeat), env=env)
        assert second.code == 0, second
        taken_over = await ashow_json(db, "frozen")
        journal = read_journal(log, "frozen")
        assert taken_over["status"] == "completed"

        kill_child(first, signal.SIGCONT)
        _, err = await asyncio.wait_for(first.communicate(), 10)
    finally:
        if first.returncode is None:
            kill_child(first, signal.SIGCONT)
            first.kill()
            await first.wait()
    assert first.returncode == 4, err
    assert "lease" in one_line_error(err.decode())
    # it wrote nothing more: the whole document (run, tasks, results, events) is unchanged,
    # and it started no other body
    assert await ashow_json(db, "frozen") == taken_over
    assert read_journal(log, "frozen") == journal
    check_journal(taken_over, journal)
    epochs = [e["data"]["epoch"] for e in taken_over["events"] if e["kind"] == "run_claimed"]
    assert epochs == [run.epoch, run.epoch + 1]


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_gives_interrupted_and_resume_completes(
    db: str, env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    log = tmp_path / "journal.log"
    options = {"tasks": "3", "followups": "0", "delay": "0.5", "log": str(log)}
    proc = await start_cli(*run_cmd(db, "sig", options), env=env)
    run = await in_flight(db, "sig", done=1)  # the second body has just begun (0.5 s long)
    kill_child(proc, sig)
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130, (out, err)
    assert b"Traceback" not in err
    assert out.decode().splitlines()[-1].startswith("run sig interrupted")

    doc = await ashow_json(db, "sig")
    assert (doc["status"], doc["worker_pid"]) == ("interrupted", None)
    interrupted = next(e for e in doc["events"] if e["kind"] == "run_interrupted")["data"]
    assert (interrupted["phase"], interrupted["task_id"]) == ("executing", run.current_task_id)
    # the body in flight was cut short, not waited for: its task is not done
    in_flight_task = next(t for t in doc["tasks"] if t["id"] == run.current_task_id)
    assert (in_flight_task["status"], in_flight_task["attempts"]) == ("pending", 1)

    resumed = await acli_here("resume", "sig", "--db", db, env=env)
    assert resumed.code == 0, resumed
    doc = await ashow_json(db, "sig")
    assert doc["status"] == "completed"
    assert [t["status"] for t in doc["tasks"]] == ["done"] * 3
    check_journal(doc, read_journal(log, "sig"))


# -- agents that are not installed -------------------------------------------------------------

PLUGIN = """
from pathlib import Path
import os

from nanoagent_core.agents.base import Agent, ExecutionResult, Reflection

marker = os.environ.get("PLUGIN_IMPORTED")
if marker:
    Path(marker).write_text("imported")


class _Plugin:
    async def plan(self, goal):
        return ["the only step"]

    async def execute(self, task, results, key):
        return ExecutionResult(False, "the plugin always fails")

    async def reflect(self, goal, done, pending):
        return Reflection(done=not pending)


def make(options):
    plugin = _Plugin()
    return Agent(name="failing", planner=plugin, executor=plugin, reflector=plugin)
"""


def install_plugin(site: Path) -> None:
    """An installed distribution (on PYTHONPATH) with an entry point ``failing`` in the group
    ``nanoagent.agents``."""
    site.mkdir()
    (site / "failing_agent.py").write_text(PLUGIN)
    info = site / "failing_agent-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: failing-agent\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nanoagent.agents]\nfailing = failing_agent:make\n")


async def test_installed_agent_runs_and_one_no_longer_installed_is_a_clear_error(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    install_plugin(site)
    with_plugin = {**env, "PYTHONPATH": str(site)}
    failed = await acli(*run_cmd(db, "plug", {}, "--agent", "failing"), env=with_plugin)
    assert failed.code == 1, failed  # the run failed: three failed attempts in a row
    before = await read_run(db, "plug")
    assert before.status is RunStatus.FAILED
    assert before.error is not None
    assert "the plugin always fails" in before.error

    # the same database where the agent is not installed (as in this process)
    for args in (("resume", "plug"), ("resume", "plug", "--detach")):
        result = await acli_here(*args, "--db", db, env=env)
        assert result.code == 2, result
        assert "unknown agent 'failing'" in one_line_error(result.err)
    after = await read_run(db, "plug")
    assert (after.status, after.epoch, after.owner) == (RunStatus.FAILED, before.epoch, None)


async def test_resume_never_imports_code_that_only_the_database_names(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    install_plugin(site)
    marker = tmp_path / "imported"
    with_module = {**env, "PYTHONPATH": str(site), "PLUGIN_IMPORTED": str(marker)}
    store = await SQLiteStore.open(db)
    try:
        # a crashed run (its owner's pid now belongs to another process) and an interrupted
        # one, each naming an import path rather than an installed agent
        reused = Owner(host=host_name(), pid=os.getpid(), pid_started=1.0)
        for run_id, status, owner in (
            ("ghost-crashed", RunStatus.RUNNING, reused),
            ("ghost-stopped", RunStatus.INTERRUPTED, None),
        ):
            await store.create_run(
                RunState(
                    run_id=run_id,
                    goal=GOAL,
                    max_iterations=5,
                    agent="failing_agent:make",
                    status=status,
                    owner=owner,
                    epoch=3,
                )
            )
        before = [await store.get_run(r) for r in ("ghost-crashed", "ghost-stopped")]
    finally:
        await store.close()
    assert shown_status(before[0]) is ShownStatus.CRASHED

    results = await gather_all(
        acli("resume", "ghost-crashed", "--db", db, env=with_module),
        acli("resume", "ghost-stopped", "--db", db, env=with_module),
    )
    for result in results:
        assert result.code == 2, result
        assert "unknown agent 'failing_agent:make'" in one_line_error(result.err)
    assert not marker.exists()  # the module named by the database was never imported
    store = await SQLiteStore.open(db)
    try:
        after = [await store.get_run(r) for r in ("ghost-crashed", "ghost-stopped")]
        claims = [e for e in await store.read_events(limit=1000) if e.kind == "run_claimed"]
    finally:
        await store.close()
    assert after == before  # nothing claimed, nothing written
    assert claims == []


# -- crash detection ---------------------------------------------------------------------------


async def test_sigkilled_worker_shows_as_crashed(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    ids = [f"victim-{n}" for n in range(5)]
    store = await SQLiteStore.open(db)
    pids: dict[str, int] = {}
    try:
        for run_id in ids:
            await store.create_run(
                RunState(run_id=run_id, goal=GOAL, max_iterations=50, agent_options={"delay": "30"})
            )
            pids[run_id] = spawn_worker(db, run_id, heartbeat=0.5, new=True, env=env)
            reaper.track(pids[run_id])
        for run_id in ids:
            run = await in_flight(db, run_id)
            assert run.owner is not None
            assert run.owner.pid == pids[run_id]
            assert shown_status(run) is ShownStatus.RUNNING

        async def detect(run_id: str, killed_at: float) -> float:
            """Poll the shown status until crashed; seconds from the kill (a figure for
            bench/crash.py, not a bound: a generous deadline only ends a hung wait)."""
            deadline = killed_at + 60
            while True:
                status = shown_status(await store.get_run(run_id))
                elapsed = time.monotonic() - killed_at
                if status is ShownStatus.CRASHED or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.002)
            assert status is ShownStatus.CRASHED, (run_id, status)
            return elapsed

        async def listed(run_id: str, killed_at: float) -> float:
            """``nanoagent list --json`` started right after the kill says crashed."""
            listing = await acli("list", "--json", "--db", db, env=env)
            shown = {row["run_id"]: row["status"] for row in json.loads(listing.out)}
            assert shown[run_id] == "crashed", shown
            assert [shown[r] for r in ids if r != run_id] == ["running"] * (len(ids) - 1)
            return time.monotonic() - killed_at

        measured: list[float] = []
        listed_in = 0.0
        for n, run_id in enumerate(ids):
            killed_at = time.monotonic()
            os.kill(pids[run_id], signal.SIGKILL)
            if n == 0:
                elapsed, listed_in = await gather_all(
                    detect(run_id, killed_at), listed(run_id, killed_at)
                )
            else:
                elapsed = await detect(run_id, killed_at)
            measured.append(elapsed)
        reap_workers()
    finally:
        await store.close()

    crashed = await acli_here("list", "--json", "--status", "crashed", "--db", db, env=env)
    assert sorted(row["run_id"] for row in json.loads(crashed.out)) == ids
    print(
        f"\ncrash detection: median {statistics.median(measured) * 1000:.1f} ms, max"
        f" {max(measured) * 1000:.1f} ms over {len(measured)} kills; 'list --json' said"
        f" crashed {listed_in:.2f}s after the kill (start-up included)"
    )
