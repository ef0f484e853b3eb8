"""The store contract for the status ``paused`` and the run's budget, on every store (see
conftest): a pause is a step that stores the reason and its detail, releases the owner and the
lease and appends ``run_paused``; a paused run is not held, not crashed and not finished; a
claim takes it up and clears the reason; abort ends it; prune never deletes it; an attempt cut
by a pause is journaled under the pause's reason; a budget set is fenced and evented."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest
from storekit import OTHER_OWNER, OWNER, FakeClock, new_run, task

from nanoagent_core.errors import LeaseLostError, ValidationError
from nanoagent_core.models import (
    Attempt,
    EventKind,
    PauseReason,
    Phase,
    RunState,
    RunStatus,
    TaskStatus,
)
from nanoagent_core.pause import pause_step
from nanoagent_core.protocols import Step, Store
from nanoagent_core.status import RESUMABLE, ShownStatus, held_by_live_worker, shown_status
from nanoagent_core.store_rules import prune_statuses

HOUR = timedelta(hours=1)


async def paused_run(
    store: Store,
    run_id: str = "run-1",
    reason: PauseReason = PauseReason.BUDGET,
    detail: str | None = "1,234 of 1,000 tokens spent",
) -> RunState:
    """A run claimed, with one task started, then paused at that task."""
    await store.create_run(new_run(run_id))
    run = await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)
    started = task("t1", attempts=1)
    cut = Attempt(task_id="t1", attempt=1, outcome=reason.value, requests=1, tokens_in=900,
                  tokens_out=334)  # fmt: skip
    step = pause_step(
        reason,
        detail,
        phase=Phase.EXECUTING,
        iteration=1,
        current_task_id="t1",
        tasks=(started,),
        attempts=(cut,),
    )
    return await store.commit_step(run_id, step, epoch=run.epoch)


async def test_a_pause_stores_the_reason_and_releases_the_run(store: Store) -> None:
    after = await paused_run(store)
    for run in (after, await store.get_run("run-1")):
        assert run.status is RunStatus.PAUSED
        assert (run.pause_reason, run.pause_detail) == (
            PauseReason.BUDGET,
            "1,234 of 1,000 tokens spent",
        )
        assert (run.owner, run.lease_expires_at, run.finished_at) == (None, None, None)
        assert (run.phase, run.iteration, run.current_task_id) == (Phase.EXECUTING, 1, "t1")
        assert (run.error, run.result, run.damaged) == (None, None, None)
        assert not run.status.finished
        assert not held_by_live_worker(run)
        assert shown_status(run) is ShownStatus.PAUSED  # not crashed: nobody should hold it
        assert ShownStatus.PAUSED in RESUMABLE
    events = await store.read_events(run_id="run-1")
    assert events[-1].kind == EventKind.RUN_PAUSED
    assert events[-1].data == {
        "reason": "budget",
        "detail": "1,234 of 1,000 tokens spent",
        "phase": "executing",
        "iteration": 1,
        "task_id": "t1",
    }


async def test_the_cut_attempt_is_journaled_and_its_task_stays_pending(store: Store) -> None:
    run = await paused_run(store)
    assert (run.requests, run.tokens_in, run.tokens_out) == (1, 900, 334)
    [cut] = await store.get_attempts("run-1")
    assert (cut.task_id, cut.attempt, cut.outcome) == ("t1", 1, "budget")
    [t1] = await store.get_all_tasks("run-1")
    assert (t1.status, t1.attempts, t1.failures) == (TaskStatus.PENDING, 1, 0)


@pytest.mark.parametrize("reason", list(PauseReason))
async def test_every_reason_round_trips(store: Store, reason: PauseReason) -> None:
    run = await paused_run(store, reason=reason, detail=None)
    assert (run.pause_reason, run.pause_detail) == (reason, None)
    assert (await store.get_run("run-1")).pause_reason is reason
    assert [a.outcome for a in await store.get_attempts("run-1")] == [reason.value]


async def test_paused_runs_are_listed_and_counted_by_their_status(store: Store) -> None:
    await paused_run(store, "waits")
    await store.create_run(new_run("other"))
    assert [r.run_id for r in await store.list_runs(statuses=[RunStatus.PAUSED])] == ["waits"]
    assert (await store.count_runs()).get(RunStatus.PAUSED) == 1
    assert [r.run_id for r in await store.get_runs(["waits"])] == ["waits"]
    detail, _, _ = await store.get_run_detail("waits")
    assert detail.pause_reason is PauseReason.BUDGET


async def test_a_claim_takes_a_paused_run_up_and_clears_the_reason(store: Store) -> None:
    paused = await paused_run(store)
    claimed = await store.claim_run(
        "run-1", OTHER_OWNER, expected_epoch=paused.epoch, lease_seconds=30
    )
    assert claimed.status is RunStatus.RUNNING
    assert (claimed.pause_reason, claimed.pause_detail) == (None, None)
    assert claimed.epoch == paused.epoch + 1
    assert claimed.owner == OTHER_OWNER
    # the position is where the pause left it; the resumed worker goes on from there
    assert (claimed.phase, claimed.iteration, claimed.current_task_id) == (
        Phase.EXECUTING,
        1,
        "t1",
    )
    # a later status clears nothing it should keep, and stores no reason
    done = await store.commit_step(
        "run-1",
        Step(phase=Phase.DONE, iteration=1, status=RunStatus.COMPLETED, result="ok"),
        epoch=claimed.epoch,
    )
    assert (done.status, done.pause_reason, done.pause_detail) == (RunStatus.COMPLETED, None, None)


async def test_a_run_paused_twice_keeps_the_newest_reason(store: Store) -> None:
    first = await paused_run(store)
    again = await store.claim_run("run-1", OWNER, expected_epoch=first.epoch, lease_seconds=30)
    step = pause_step(
        PauseReason.APPROVAL,
        "send_email to bob?",
        phase=Phase.REFLECTING,
        iteration=2,
        current_task_id=None,
    )
    second = await store.commit_step("run-1", step, epoch=again.epoch)
    assert second.pause_reason is PauseReason.APPROVAL
    assert second.pause_detail == "send_email to bob?"
    assert (second.phase, second.iteration) == (Phase.REFLECTING, 2)
    kinds = [e.kind for e in await store.read_events(run_id="run-1")]
    assert kinds.count(EventKind.RUN_PAUSED) == 2


async def test_a_paused_run_is_aborted_at_once(store: Store) -> None:
    paused = await paused_run(store)
    requested = await store.request_abort("run-1")  # allowed: not finished
    assert requested.status is RunStatus.PAUSED
    aborted = await store.abort_unowned(
        "run-1", expected_epoch=paused.epoch, reason="aborted on request (no live worker)"
    )
    assert aborted.status is RunStatus.ABORTED
    assert (aborted.pause_reason, aborted.pause_detail) == (None, None)
    assert aborted.finished_at is not None
    assert (await store.get_run("run-1")).status is RunStatus.ABORTED


async def test_the_pausing_worker_holds_nothing_afterwards(store: Store) -> None:
    paused = await paused_run(store)
    with pytest.raises(LeaseLostError):
        await store.renew_lease("run-1", epoch=paused.epoch, lease_seconds=30)
    with pytest.raises(LeaseLostError):
        await store.set_budget("run-1", epoch=paused.epoch, max_tokens=5, max_cost_usd=None)


async def test_prune_never_deletes_a_paused_run(store: Store, clock: FakeClock) -> None:
    await paused_run(store, "old-paused")
    await store.create_run(new_run("old-done"))
    done = await store.claim_run("old-done", OWNER, expected_epoch=0, lease_seconds=30)
    await store.commit_step(
        "old-done",
        Step(phase=Phase.DONE, iteration=0, status=RunStatus.COMPLETED),
        epoch=done.epoch,
    )
    await store.create_run(new_run("newest"))  # holds the newest event: never pruned
    clock.advance(100 * 24 * 3600)
    statuses = [RunStatus.COMPLETED, RunStatus.ABORTED, RunStatus.FAILED]
    counted = await store.count_finished_runs(statuses=statuses, older_than=HOUR)
    assert counted.runs == 1
    pruned = await store.delete_finished_runs(statuses=statuses, older_than=HOUR)
    assert pruned.runs == 1
    assert (await store.get_run("old-paused")).status is RunStatus.PAUSED
    with pytest.raises(ValidationError, match="paused"):
        prune_statuses([RunStatus.PAUSED])


def test_a_step_pauses_exactly_when_it_gives_a_reason() -> None:
    with pytest.raises(pydantic.ValidationError, match="reason"):
        Step(phase=Phase.EXECUTING, iteration=1, status=RunStatus.PAUSED)
    with pytest.raises(pydantic.ValidationError, match="reason"):
        Step(phase=Phase.EXECUTING, iteration=1, pause_reason=PauseReason.BUDGET)
    with pytest.raises(pydantic.ValidationError, match="reason"):
        Step(
            phase=Phase.DONE,
            iteration=1,
            status=RunStatus.COMPLETED,
            pause_reason=PauseReason.BUDGET,
        )
    with pytest.raises(pydantic.ValidationError, match="detail"):
        Step(phase=Phase.EXECUTING, iteration=1, pause_detail="no reason")


def test_a_pause_detail_is_one_clipped_line() -> None:
    step = pause_step(
        PauseReason.BUDGET,
        "spent\n" + "x" * 2000,
        phase=Phase.EXECUTING,
        iteration=1,
        current_task_id=None,
    )
    assert step.pause_detail is not None
    assert "\n" not in step.pause_detail
    assert len(step.pause_detail) <= 500
    assert step.events[-1].data["detail"] == step.pause_detail


# -- the budget ------------------------------------------------------------------------------


async def test_a_run_is_created_with_its_budget(store: Store) -> None:
    created = await store.create_run(new_run("budgeted", max_tokens=1000, max_cost_usd=0.5))
    for run in (created, await store.get_run("budgeted")):
        assert (run.max_tokens, run.max_cost_usd) == (1000, 0.5)
    plain = await store.create_run(new_run("plain"))
    assert (plain.max_tokens, plain.max_cost_usd) == (None, None)


async def test_set_budget_is_fenced_and_evented(store: Store) -> None:
    await store.create_run(new_run("run-1", max_tokens=10))
    run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    raised = await store.set_budget("run-1", epoch=run.epoch, max_tokens=50_000, max_cost_usd=2.0)
    assert (raised.max_tokens, raised.max_cost_usd) == (50_000, 2.0)
    assert (await store.get_run("run-1")).max_tokens == 50_000
    event = (await store.read_events(run_id="run-1"))[-1]
    assert (event.kind, event.data) == (
        EventKind.BUDGET_SET,
        {"max_tokens": 50_000, "max_cost_usd": 2.0},
    )
    lifted = await store.set_budget("run-1", epoch=run.epoch, max_tokens=None, max_cost_usd=None)
    assert (lifted.max_tokens, lifted.max_cost_usd) == (None, None)
    with pytest.raises(LeaseLostError):
        await store.set_budget("run-1", epoch=run.epoch - 1, max_tokens=1, max_cost_usd=None)
    before = len(await store.read_events(run_id="run-1"))
    for tokens, cost in ((0, None), (-5, None), (None, 0.0), (None, -1.0), (None, float("nan"))):
        with pytest.raises(ValidationError):
            await store.set_budget("run-1", epoch=run.epoch, max_tokens=tokens, max_cost_usd=cost)
    assert len(await store.read_events(run_id="run-1")) == before
    assert (await store.get_run("run-1")).max_tokens is None
