"""Approvals end to end with real processes on a real SQLite file: the demo agent's
``approve=N`` task asks to approve an action, the run pauses (reason ``approval``) with no
worker, ``nanoagent approve`` decides and resumes it in a detached worker.

The demo agent's ``log`` journal gets one line per body start (its attempt key) and one
``action KEY REQUEST_ID`` line each time the approved action runs, so the tests can see which
attempt ran the action under which decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loopkit import Reaper, acli, acli_here, option_args, read_run, wait_pid_gone, wait_until

from nanoagent_core.approvals import Decision
from nanoagent_core.models import PauseReason, RunState, RunStatus
from nanoagent_core.sqlite import SQLiteStore

WORKER_FAULT = "NANOAGENT_FAULT_KILL_IN_BODY"


def options(log: Path, **extra: str) -> list[str]:
    return option_args(
        {"tasks": "2", "followups": "0", "delay": "0.2", "approve": "1", "log": str(log), **extra}
    )


async def approvals_of(db: str, run_id: str):
    store = await SQLiteStore.open(db, read_only=True)
    try:
        return await store.get_approvals(run_id)
    finally:
        await store.close()


async def wait_status(db: str, run_id: str, status: RunStatus) -> RunState:
    async def probe() -> RunState:
        return await read_run(db, run_id)

    return await wait_until(
        probe, lambda run: run.status is status, timeout=90, interval=0.1, what=str(status)
    )


def journal(log: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(attempt keys in start order, (key, request id) of each action)."""
    starts: list[str] = []
    actions: list[tuple[str, str]] = []
    for line in log.read_text().splitlines():
        if line.startswith("action "):
            _, key, request_id = line.split(" ")
            actions.append((key, request_id))
        else:
            starts.append(line)
    return starts, actions


async def paused_run(db: str, log: Path, env: dict[str, str], run_id: str = "r1") -> RunState:
    ran = await acli_here("run", "Send the weekly report", "--db", db, "--run-id", run_id,
                     *options(log), env=env)  # fmt: skip
    assert ran.code == 6, ran  # paused: the exit status of a run that waits
    assert "approval_requested" in ran.out
    run = await read_run(db, run_id)
    assert (run.status, run.pause_reason, run.owner) == (
        RunStatus.PAUSED,
        PauseReason.APPROVAL,
        None,
    )
    return run


async def test_a_kill_between_the_approval_and_the_action_reruns_it_under_the_same_decision(
    db: str, env: dict[str, str], tmp_path: Path, reaper: Reaper
) -> None:
    log = tmp_path / "bodies.log"
    await paused_run(db, log, env)
    (request,) = await approvals_of(db, "r1")
    starts, actions = journal(log)
    assert (len(starts), actions) == (1, [])  # asked, did nothing

    # the worker that takes the approved run up dies inside the body, after the action ran
    # and before the task's outcome could commit
    approved = await acli("approve", "r1", "--db", db, env={**env, WORKER_FAULT: "1"})
    assert approved.code == 0, approved
    assert f"approved {request.id} (send_summary)" in approved.out
    assert '"to": "team@example.com"' in approved.out

    async def acted() -> list[tuple[str, str]]:
        return journal(log)[1]

    await wait_until(acted, lambda got: len(got) == 1, timeout=90, what="the action")
    run = await read_run(db, "r1")
    if run.owner is not None:
        reaper.track(run.owner.pid)
        await wait_pid_gone(run.owner.pid, timeout=60)

    resumed = await acli_here("resume", "r1", "--db", db, env=env)
    assert resumed.code == 0, resumed
    final = await read_run(db, "r1")
    assert final.status is RunStatus.COMPLETED

    starts, actions = journal(log)
    task_id = request.task_id
    keys = [f"r1:{task_id}:{n}" for n in (1, 2, 3)]
    assert [key for key in starts if f":{task_id}:" in key] == keys
    # the action ran once per attempt key, only after the approval, always under it
    assert actions == [(keys[1], request.id), (keys[2], request.id)]
    (stored,) = await approvals_of(db, "r1")
    assert (stored.id, stored.decision, stored.digest) == (
        request.id,
        Decision.APPROVED,
        request.digest,
    )


async def test_deny_then_approving_twice_or_a_stale_request_is_refused(
    db: str, env: dict[str, str], tmp_path: Path, reaper: Reaper
) -> None:
    log = tmp_path / "bodies.log"
    await paused_run(db, log, env)
    (request,) = await approvals_of(db, "r1")
    denied = await acli("approve", "r1", "--deny", "--reason", "not\ttoday", "--db", db, env=env)
    assert denied.code == 0, denied
    assert f"denied {request.id} (send_summary) of run r1; resuming in worker pid" in denied.out
    final = await wait_status(db, "r1", RunStatus.COMPLETED)
    assert journal(log)[1] == []  # the action never ran
    store = await SQLiteStore.open(db, read_only=True)
    try:
        _, tasks, results = await store.get_run_detail("r1")
    finally:
        await store.close()
    assert results[request.task_id] == "step 1: send_summary was denied (not today)"
    assert final.error is None

    again = await acli_here("approve", "r1", "--db", db, env=env)
    assert again.code == 7, again
    assert again.err.strip() == "nanoagent: run 'r1' has no approval request waiting for a decision"
    stale = await acli_here("approve", "r1", "--request", request.id, "--db", db, env=env)
    assert stale.code == 7, stale
    assert "is no longer pending (denied)" in stale.err
    unknown = await acli_here("approve", "r1", "--request", "ap-nothing", "--db", db, env=env)
    assert unknown.code == 3, unknown
    nobody = await acli_here("approve", "r9", "--db", db, env=env)
    assert nobody.code == 3, nobody
    (stored,) = await approvals_of(db, "r1")
    assert (stored.decision, stored.reason) == (Decision.DENIED, "not today")
    assert len(tasks) == 2


async def test_a_decision_for_arguments_not_shown_is_refused(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    """The dashboard's path (operations.decide) binds the decision to the digest it showed:
    a request whose arguments are not the ones shown is refused and stays pending."""
    from nanoagent_core.approvals import StaleRequestError
    from nanoagent_tui import operations

    log = tmp_path / "bodies.log"
    await paused_run(db, log, env)
    (request,) = await approvals_of(db, "r1")
    with pytest.raises(StaleRequestError, match="other arguments than those reviewed"):
        await operations.decide(db, "r1", request.id, "0" * 64, approve=True)
    (stored,) = await approvals_of(db, "r1")
    assert stored.decision is Decision.PENDING
    assert json.loads(stored.arguments)["to"] == "team@example.com"
