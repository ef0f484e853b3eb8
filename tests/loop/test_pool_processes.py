"""Pool workers (``nanoagent worker``) as real processes on one SQLite file: queued runs
driven to completion, SIGTERM releasing runs that another worker then completes, and
automatic recovery whose restart budget ends a run that kills its worker every time.

Waiting is on conditions (the database, process exits) with generous bounds; no timing
is asserted."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from loopkit import (
    acli_here,
    ashow_json,
    check_journal,
    kill_child,
    read_journal,
    start_cli,
    wait_until,
)

from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.sqlite import SQLiteStore

HEARTBEAT = "0.5"
BOUND = 120.0


async def enqueue(db: str, env: dict[str, str], run_id: str, *options: str) -> None:
    done = await acli_here(
        "run", "write a field guide", "--enqueue", "--run-id", run_id, "--db", db,
        *[arg for option in options for arg in ("--option", option)], env=env,
    )  # fmt: skip
    assert (done.code, done.out.strip()) == (0, run_id), done


async def runs(db: str) -> list[RunState]:
    store = await SQLiteStore.open(db, read_only=True)
    try:
        return await store.list_runs(limit=1000)
    finally:
        await store.close()


async def worker(db: str, env: dict[str, str], *extra: str) -> asyncio.subprocess.Process:
    return await start_cli(
        "worker", "--db", db, "--heartbeat", HEARTBEAT, "--log-level", "INFO", *extra, env=env
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), BOUND)
    except TimeoutError:
        kill_child(proc)
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_one_pool_worker_drives_many_queued_runs_to_completion(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    journal = tmp_path / "bodies.log"
    ids = [f"pool-{n}" for n in range(8)]
    for run_id in ids:
        await enqueue(db, env, run_id, "tasks=3", "delay=0.05", "followups=1", f"log={journal}")
    listed = await acli_here("list", "--status", "queued", "--json", "--db", db, env=env)
    assert sorted(run["run_id"] for run in json.loads(listed.out)) == ids

    proc = await worker(db, env, "--concurrency", "5", "--until-idle")
    code, out, err = await finish(proc)
    assert code == 0, err
    assert "completed 8" in out, out
    assert "errors 0" in out, out
    for run_id in ids:
        doc = await ashow_json(db, run_id)
        assert doc["status"] == "completed", doc["error"]
        claims = [e["data"] for e in doc["events"] if e["kind"] == "run_claimed"]
        assert [claim["pid"] for claim in claims] == [proc.pid]  # one claim, by this pool
        check_journal(doc, read_journal(journal, run_id), run_id)


async def test_sigterm_releases_runs_and_another_worker_completes_them(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    journal = tmp_path / "bodies.log"
    ids = [f"term-{n}" for n in range(3)]
    for run_id in ids:
        # 20 bodies of 0.4 s: none can finish between the check below and the SIGTERM
        await enqueue(db, env, run_id, "tasks=20", "delay=0.4", "followups=0", f"log={journal}")
    first = await worker(db, env, "--concurrency", "10")
    try:

        async def under_way() -> list[RunState]:
            return await runs(db)

        await wait_until(
            under_way,
            lambda rs: (
                len(rs) == 3
                and all(
                    r.owner is not None and r.owner.pid == first.pid and r.tasks_done >= 1
                    for r in rs
                )
            ),
            timeout=BOUND,
            what="the pool driving all three runs",
        )
    finally:
        kill_child(first, signal.SIGTERM)
    code, out, err = await finish(first)
    assert code == 0, err
    assert "released 3" in out, out
    for run in await runs(db):
        assert run.status is RunStatus.QUEUED, run  # released for any pool worker
        assert run.owner is None
        doc = await ashow_json(db, run.run_id)
        assert [e["kind"] for e in doc["events"]].count("run_interrupted") == 1
        assert doc["status"] == "queued"

    second = await worker(db, env, "--until-idle")
    code, out, err = await finish(second)
    assert code == 0, err
    assert "claimed 3" in out, out
    assert "completed 3" in out, out
    for run_id in ids:
        doc = await ashow_json(db, run_id)
        assert doc["status"] == "completed", doc["error"]
        pids = [e["data"]["pid"] for e in doc["events"] if e["kind"] == "run_claimed"]
        assert pids == [first.pid, second.pid]
        check_journal(doc, read_journal(journal, run_id), run_id)


async def test_recover_gives_up_after_the_restart_budget_on_a_run_that_kills_its_worker(
    db: str, env: dict[str, str]
) -> None:
    await enqueue(db, env, "doomed", "tasks=2", "delay=0.2")
    killer = {**env, "NANOAGENT_FAULT_KILL_IN_BODY": "1"}
    exits: list[int] = []
    # the first worker claims it from the queue; three recoveries follow; each dies in a body
    for _ in range(4):
        proc = await worker(db, killer, "--recover", "--until-idle")
        code, _, err = await finish(proc)
        exits.append(code)
        assert code == -signal.SIGKILL, err
    last = await worker(db, killer, "--recover", "--until-idle")
    code, out, err = await finish(last)
    assert code == 0, err
    assert "gave up 1" in out, out
    assert exits == [-signal.SIGKILL] * 4

    doc = await ashow_json(db, "doomed")
    assert doc["status"] == "failed"
    assert "restart budget spent" in doc["error"]
    kinds = [e["kind"] for e in doc["events"]]
    restarts = [e["data"] for e in doc["events"] if e["kind"] == "run_restarted"]
    assert [r["restart"] for r in restarts] == [1, 2, 3]
    assert all(r["budget"] == 3 for r in restarts)
    assert kinds[-1] == "run_failed"
    # the budget stops the loop: another recovering worker finds nothing to take up
    again = await worker(db, env, "--recover", "--until-idle")
    code, out, err = await finish(again)
    assert code == 0, err
    assert "recovered 0" in out, out
    assert "gave up 0" in out, out
    assert (await ashow_json(db, "doomed"))["status"] == "failed"


async def test_abort_stops_one_run_of_a_pool_and_the_others_go_on(
    db: str, env: dict[str, str]
) -> None:
    # "stopped" cannot finish before the abort however loaded (50 bodies of 1 s); "goes-on"
    # is short and may have completed by the time the test looks
    await enqueue(db, env, "stopped", "tasks=50", "delay=1", "followups=0")
    await enqueue(db, env, "goes-on", "tasks=4", "delay=0.2", "followups=0")
    proc = await worker(db, env, "--until-idle")

    async def both_going() -> list[RunState]:
        return await runs(db)

    await wait_until(
        both_going,
        lambda rs: (
            len(rs) == 2
            and all(r.tasks_done >= 1 for r in rs)
            and any(r.run_id == "stopped" and r.owner is not None for r in rs)
        ),
        timeout=BOUND,
        what="the pool driving both runs",
    )
    aborted = await acli_here("abort", "stopped", "--db", db, env=env)
    assert aborted.code == 0, aborted
    code, out, err = await finish(proc)
    assert code == 0, err
    assert "aborted 1" in out, out
    assert "completed 1" in out, out
    stopped, goes_on = await ashow_json(db, "stopped"), await ashow_json(db, "goes-on")
    assert stopped["status"] == "aborted"
    assert [e["kind"] for e in stopped["events"]][-1] == "run_aborted"
    assert goes_on["status"] == "completed"
