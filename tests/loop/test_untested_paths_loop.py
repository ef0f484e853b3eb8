"""Paths no test executed before (issue 15, item 8): ``nanoagent demo``, the text output of
``list`` and ``show``, ``list --limit`` with a derived status, ``--durable``, the ``resume
--new`` refusal, a store error in the middle of a run, a heartbeat that meets a transient
error, and a resumed position whose task is no longer pending."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loopkit import Reaper, ScriptedAgent, acli, acli_here, ashow_json, read_run, wait_until

from nanoagent_core.actions import abort_run
from nanoagent_core.demo import demo_runs
from nanoagent_core.errors import DatabaseError, RunBusyError
from nanoagent_core.loop import Loop
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import Phase, RunState, RunStatus, Task, TaskStatus
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import Step
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.worker import drive, resume_run

GOAL = "Walk the paths nobody walked"


# -- the demo command --------------------------------------------------------------------------


async def test_demo_starts_its_runs_and_leaves_one_crashed(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    started = await acli("demo", "--no-dashboard", "--db", db, env=env, timeout=120)
    assert started.code == 0, started
    ids = started.out.split()
    assert len(ids) == len(demo_runs()), started  # with the llm extra, an llm run too
    assert all(run_id.startswith("demo-") for run_id in ids)

    async def settled(run_id: str) -> RunState:
        """Claimed by its worker (tracked for the reaper) or finished."""

        async def probe() -> RunState:
            return await read_run(db, run_id)

        return await wait_until(
            probe,
            lambda r: r.owner is not None or r.status is not RunStatus.RUNNING,
            timeout=60,
            what=f"{run_id} claimed",
        )

    for run_id in ids:
        run = await settled(run_id)
        if run.owner is not None:
            reaper.track(run.owner.pid)
    listing = await acli_here("list", "--json", "--db", db, env=env)
    shown = {row["run_id"]: row["status"] for row in json.loads(listing.out)}
    crashed = [run_id for run_id in ids if "-migrate-" in run_id]
    assert [shown[run_id] for run_id in crashed] == ["crashed"], shown
    crashed_doc = await ashow_json(db, crashed[0])
    assert crashed_doc["tasks_done"] >= 2  # it was killed midway, as the demo promises


# -- list and show, as text --------------------------------------------------------------------


async def seeded(db: str) -> None:
    """One completed run (with a result), one failed (with an error), one crashed (a dead
    owner on this host), one running (held by this live process)."""
    store = await SQLiteStore.open(db)
    try:
        for run_id in ("done", "failed", "crashed", "waiting"):
            await store.create_run(
                RunState(run_id=run_id, goal=f"{GOAL} {run_id}", max_iterations=50)
            )
        for run_id, status, result, error in (
            ("done", RunStatus.COMPLETED, "all good", None),
            ("failed", RunStatus.FAILED, None, "it broke"),
        ):
            run = await store.claim_run(run_id, current_owner(), expected_epoch=0, lease_seconds=60)
            await store.commit_step(
                run_id,
                Step(
                    phase=Phase.DONE,
                    iteration=1,
                    status=status,
                    tasks=(Task(id=f"t-{run_id}", description="the one task"),),
                    result=result,
                    error=error,
                ),
                epoch=run.epoch,
            )
        dead = current_owner().model_copy(update={"pid": 2**22 + 7, "pid_started": 1.0})
        await store.claim_run("crashed", dead, expected_epoch=0, lease_seconds=600)
        # held by this (live) process
        await store.claim_run("waiting", current_owner(), expected_epoch=0, lease_seconds=600)
    finally:
        await store.close()


async def test_list_as_text_shows_every_run_and_the_derived_status(
    db: str, env: dict[str, str]
) -> None:
    await seeded(db)
    listed = await acli_here("list", "--db", db, env=env)
    assert listed.code == 0, listed
    header, *rows = listed.out.splitlines()
    assert header.split() == ["STATUS", "RUN", "PHASE", "TASKS", "ITER", "TOKENS", "WORKER", "GOAL"]
    status_of = {row.split()[1]: row.split()[0] for row in rows}
    assert status_of == {
        "done": "completed",
        "failed": "failed",
        "crashed": "crashed",
        "waiting": "running",
    }
    empty = await acli_here("list", "--db", str(Path(db).with_name("none.db")), env=env)
    assert empty.code == 0
    assert empty.out.startswith("no runs yet")


async def test_list_limit_applies_after_a_derived_status_filter(
    db: str, env: dict[str, str]
) -> None:
    """``crashed`` and ``running`` are both stored ``running``: the limit counts the runs
    shown, after the split, not the rows read."""
    await seeded(db)
    for status, expected in (("crashed", ["crashed"]), ("running", ["waiting"])):
        listed = await acli_here("list", "--json", "--status", status, "--limit", "1", "--db", db,
                            env=env)  # fmt: skip
        assert listed.code == 0, listed
        assert [row["run_id"] for row in json.loads(listed.out)] == expected, status
    two = await acli_here("list", "--json", "--limit", "2", "--db", db, env=env)
    assert len(json.loads(two.out)) == 2


async def test_show_as_text_gives_the_result_the_error_and_the_worker(
    db: str, env: dict[str, str]
) -> None:
    await seeded(db)
    done = await acli_here("show", "done", "--db", db, env=env)
    assert done.code == 0, done
    lines = done.out.splitlines()
    assert lines[0].startswith("run done  completed")
    assert f"goal: {GOAL} done" in lines
    assert ["pending", "t-done", "p5", "a0", "the", "one", "task"] in [x.split() for x in lines]
    assert lines[-1] == "all good"
    failed = await acli_here("show", "failed", "--db", db, env=env)
    assert "error: it broke" in failed.out.splitlines()
    crashed = await acli_here("show", "crashed", "--db", db, env=env)
    assert f"worker: pid {2**22 + 7} on " in crashed.out


# -- resume --new and --durable ----------------------------------------------------------------


async def test_resume_new_on_a_run_someone_took_up_is_refused_quietly(
    db: str, env: dict[str, str]
) -> None:
    await seeded(db)
    refused = await acli_here("resume", "--new", "crashed", "--db", db, env=env)
    assert (refused.code, refused.out, refused.err) == (4, "", "")
    assert (await read_run(db, "crashed")).epoch == 1  # untouched


async def test_durable_run_completes(db: str, env: dict[str, str]) -> None:
    options = ["--option", "tasks=2", "--option", "delay=0", "--option", "followups=0"]
    ran = await acli_here(
        "run", GOAL, "--durable", "--db", db, "--run-id", "sure", *options, env=env
    )
    assert ran.code == 0, ran
    assert (await read_run(db, "sure")).status is RunStatus.COMPLETED


# -- a worker meeting store errors -------------------------------------------------------------


class FlakyStore(MemoryStore):
    """A real memory store whose n-th commit_step / renew_lease fails as a database would."""

    def __init__(self, *, fail_commit: int = 0, fail_renewals: int = 0) -> None:
        super().__init__()
        self.commits = 0
        self.fail_commit = fail_commit
        self.fail_renewals = fail_renewals
        self.renewals = 0

    async def commit_step(self, run_id: str, step: Step, *, epoch: int) -> RunState:
        self.commits += 1
        if self.commits == self.fail_commit:
            raise RuntimeError("disk I/O error (injected)")
        return await super().commit_step(run_id, step, epoch=epoch)

    async def renew_lease(self, run_id: str, *, epoch: int, lease_seconds: float) -> RunState:
        self.renewals += 1
        if self.renewals <= self.fail_renewals:
            raise DatabaseError("database is locked (injected)")
        return await super().renew_lease(run_id, epoch=epoch, lease_seconds=lease_seconds)


async def test_an_unexpected_store_error_mid_run_is_recorded_failed() -> None:
    store = FlakyStore(fail_commit=3)
    await store.create_run(RunState(run_id="r", goal=GOAL, max_iterations=50, agent="scripted"))
    run = await store.claim_run("r", current_owner(), expected_epoch=0, lease_seconds=60)
    scripted = ScriptedAgent(plan=["a", "b", "c"])
    final = await drive(store, Loop(store, run, scripted.agent()), heartbeat=30,
                        handle_signals=False)  # fmt: skip
    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert "disk I/O error (injected)" in final.error
    events = await store.read_events(run_id="r")
    assert events[-1].kind == "run_failed"


async def test_a_heartbeat_meeting_a_transient_error_keeps_going() -> None:
    store = FlakyStore(fail_renewals=2)
    await store.create_run(RunState(run_id="r", goal=GOAL, max_iterations=50, agent="scripted"))
    run = await store.claim_run("r", current_owner(), expected_epoch=0, lease_seconds=60)
    beats = 0

    async def before_body(task: Task, key: str) -> None:
        # the first body waits until the heartbeat failed twice and then renewed once
        del task, key
        nonlocal beats
        beats += 1
        if beats == 1:
            await wait_until(lambda: _renewals(store), lambda n: n >= 3, timeout=60,
                             what="three heartbeats")  # fmt: skip

    scripted = ScriptedAgent(plan=["a", "b"], before_body=before_body)
    final = await drive(store, Loop(store, run, scripted.agent()), heartbeat=0.01,
                        handle_signals=False)  # fmt: skip
    assert final.status is RunStatus.COMPLETED, final.error
    assert store.renewals >= 3


async def _renewals(store: FlakyStore) -> int:
    return store.renewals


# -- a resumed position whose task is no longer pending ----------------------------------------


async def test_resume_at_a_task_already_done_moves_on_without_running_it() -> None:
    store = MemoryStore()
    await store.create_run(RunState(run_id="r", goal=GOAL, max_iterations=50, agent="demo",
                                    agent_options={"tasks": "2", "delay": "0",
                                                   "followups": "0"}))  # fmt: skip
    owner = current_owner().model_copy(update={"pid": 2**22 + 9, "pid_started": 1.0})
    run = await store.claim_run("r", owner, expected_epoch=0, lease_seconds=60)
    first = Task(id="t1", description="Step 1: done before the crash", status=TaskStatus.DONE,
                 attempts=1, result="r1")  # fmt: skip
    second = Task(id="t2", description="Step 2: still to do", seq=1)
    await store.commit_step(
        "r",
        Step(
            phase=Phase.EXECUTING,
            iteration=1,
            current_task_id="t1",
            tasks=(first, second),
            results={"t1": "r1"},
        ),
        epoch=run.epoch,
    )
    final = await resume_run(store, "r", heartbeat=30, handle_signals=False)
    assert final.status is RunStatus.COMPLETED, final.error
    tasks = {t.id: t for t in await store.get_all_tasks("r")}
    assert (tasks["t1"].attempts, tasks["t1"].result) == (1, "r1")  # not run again
    assert tasks["t2"].status is TaskStatus.DONE
    started = [e.data["task_id"] for e in await store.read_events(run_id="r")
               if e.kind == "task_started"]  # fmt: skip
    assert "t1" not in started


# -- abort_run when the run changes hands under it ---------------------------------------------


class HandOverStore(MemoryStore):
    """A real memory store where, just before each of the first ``handovers`` abort_unowned
    calls, another (dead) worker claims the run: the epoch the caller read has moved."""

    def __init__(self, handovers: int) -> None:
        super().__init__()
        self.handovers = handovers
        self.calls = 0

    async def abort_unowned(self, run_id: str, *, expected_epoch: int, reason: str) -> RunState:
        self.calls += 1
        if self.calls <= self.handovers:
            run = await self.get_run(run_id)
            dead = current_owner().model_copy(update={"pid": 2**22 + self.calls})
            await self.claim_run(run_id, dead, expected_epoch=run.epoch, lease_seconds=60,
                                 owner_gone=True)  # fmt: skip
        return await super().abort_unowned(run_id, expected_epoch=expected_epoch, reason=reason)


async def crashed_run(store: MemoryStore) -> None:
    await store.create_run(RunState(run_id="r", goal=GOAL, max_iterations=50))
    dead = current_owner().model_copy(update={"pid": 2**22 + 99, "pid_started": 1.0})
    await store.claim_run("r", dead, expected_epoch=0, lease_seconds=60)


async def test_abort_retries_when_a_worker_claimed_the_run_meanwhile() -> None:
    store = HandOverStore(handovers=1)
    await crashed_run(store)
    assert await abort_run(store, "r") == "run r aborted"
    assert store.calls == 2
    assert (await store.get_run("r")).status is RunStatus.ABORTED


async def test_abort_gives_up_on_a_run_that_keeps_changing_hands() -> None:
    store = HandOverStore(handovers=3)
    await crashed_run(store)
    with pytest.raises(RunBusyError, match="keeps changing hands"):
        await abort_run(store, "r")
    assert store.calls == 3
    assert (await store.get_run("r")).status is RunStatus.RUNNING
