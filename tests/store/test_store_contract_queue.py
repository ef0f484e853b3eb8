"""The queue's contract, on every store (memory, SQLite, PostgreSQL): queued runs are claimed
oldest first, never one whose abort was requested; recovery claims only a crashed run,
counts its restarts as events, and ends it failed once the budget is spent."""

from __future__ import annotations

import pytest
from storekit import FakeClock, new_run

from nanoagent_core.errors import LeaseLostError, RunBusyError, RunFinishedError
from nanoagent_core.models import EventKind, Owner, RunStatus
from nanoagent_core.protocols import Step, Store

ME = Owner(host="host-a", pid=4242, pid_started=1.0)
OTHER = Owner(host="host-b", pid=77, pid_started=1.0)


async def test_queued_runs_are_claimed_oldest_first_then_none(
    store: Store, clock: FakeClock
) -> None:
    for run_id in ("b-old", "a-new"):  # created in this order: age, not id, decides
        await store.create_run(new_run(run_id, status=RunStatus.QUEUED))
        clock.advance(1.0)
    assert await store.count_runs() == {RunStatus.QUEUED: 2}
    assert [r.run_id for r in await store.list_runs(statuses=[RunStatus.QUEUED])] == [
        "a-new",
        "b-old",
    ]
    first = await store.claim_next(ME, lease_seconds=30)
    second = await store.claim_next(OTHER, lease_seconds=30)
    assert first is not None
    assert second is not None
    assert (first.run_id, first.status, first.epoch, first.owner) == (
        "b-old",
        RunStatus.RUNNING,
        1,
        ME,
    )
    assert (second.run_id, second.owner) == ("a-new", OTHER)
    assert await store.claim_next(ME, lease_seconds=30) is None
    kinds = [e.kind for e in await store.read_events(run_id="b-old")]
    assert kinds == [EventKind.RUN_CREATED, EventKind.RUN_CLAIMED]


async def test_queued_runs_are_claimed_in_batches_oldest_first(
    store: Store, clock: FakeClock
) -> None:
    ids = [f"r{n}" for n in range(5)]
    for run_id in reversed(ids):  # the newest id is the oldest run
        await store.create_run(new_run(run_id, status=RunStatus.QUEUED))
        clock.advance(1.0)
    first = await store.claim_queued(ME, lease_seconds=30, limit=3)
    assert [r.run_id for r in first] == ["r4", "r3", "r2"]
    assert {(r.status, r.epoch, r.owner) for r in first} == {(RunStatus.RUNNING, 1, ME)}
    rest = await store.claim_queued(OTHER, lease_seconds=30, limit=10)
    assert [r.run_id for r in rest] == ["r1", "r0"]
    assert await store.claim_queued(ME, lease_seconds=30, limit=10) == []
    for run_id in ids:
        kinds = [e.kind for e in await store.read_events(run_id=run_id)]
        assert kinds == [EventKind.RUN_CREATED, EventKind.RUN_CLAIMED]


async def test_a_queued_run_whose_abort_was_requested_is_not_claimed(store: Store) -> None:
    await store.create_run(new_run("q", status=RunStatus.QUEUED))
    await store.request_abort("q")
    assert await store.claim_next(ME, lease_seconds=30) is None
    aborted = await store.abort_unowned("q", expected_epoch=0, reason="aborted while queued")
    assert aborted.status is RunStatus.ABORTED


async def test_recovery_counts_restarts_and_spends_the_budget(
    store: Store, clock: FakeClock
) -> None:
    await store.create_run(new_run("crashy", status=RunStatus.QUEUED))
    run = await store.claim_next(OTHER, lease_seconds=5)
    assert run is not None
    # its owner lives (another host) and its lease lasts: not recoverable yet
    with pytest.raises(RunBusyError):
        await store.recover_run(
            "crashy", ME, expected_epoch=run.epoch, lease_seconds=5, owner_gone=False, budget=2
        )
    for restart in (1, 2):
        clock.advance(10.0)  # the lease ran out
        taken = await store.recover_run(
            "crashy", ME, expected_epoch=run.epoch, lease_seconds=5, owner_gone=False, budget=2
        )
        assert (taken.status, taken.epoch, taken.owner) == (RunStatus.RUNNING, run.epoch + 1, ME)
        events = await store.read_events(run_id="crashy")
        assert events[-2].kind == EventKind.RUN_RESTARTED
        assert events[-2].data["restart"] == restart
        assert events[-1].kind == EventKind.RUN_CLAIMED
        run = taken
    # the worker that held it is fenced out
    with pytest.raises(LeaseLostError):
        await store.commit_step("crashy", Step(phase=run.phase, iteration=0), epoch=run.epoch - 1)
    clock.advance(10.0)
    ended = await store.recover_run(
        "crashy", OTHER, expected_epoch=run.epoch, lease_seconds=5, owner_gone=True, budget=2
    )
    assert (ended.status, ended.owner, ended.epoch) == (RunStatus.FAILED, None, run.epoch + 1)
    assert ended.error is not None
    assert "restart budget spent" in ended.error
    last = (await store.read_events(run_id="crashy"))[-1]
    assert last.kind == EventKind.RUN_FAILED
    # a finished run is never taken up by recovery
    with pytest.raises(RunFinishedError):
        await store.recover_run(
            "crashy", ME, expected_epoch=ended.epoch, lease_seconds=5, owner_gone=True, budget=9
        )


async def test_recovery_leaves_a_run_its_worker_ended_meanwhile(store: Store) -> None:
    await store.create_run(new_run("ended", status=RunStatus.QUEUED))
    run = await store.claim_next(OTHER, lease_seconds=5)
    assert run is not None
    failed = Step(phase=run.phase, iteration=0, status=RunStatus.FAILED, error="boom")
    await store.commit_step("ended", failed, epoch=run.epoch)  # same epoch, no longer running
    with pytest.raises(RunFinishedError):
        await store.recover_run(
            "ended", ME, expected_epoch=run.epoch, lease_seconds=5, owner_gone=True, budget=3
        )
    assert (await store.get_run("ended")).status is RunStatus.FAILED
