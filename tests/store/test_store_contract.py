"""The store contract: every test runs against MemoryStore and SQLiteStore (see conftest)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from storekit import OTHER_OWNER, OWNER, FakeClock, new_run, snapshot, task

from nanoagent_core.errors import (
    DatabaseError,
    LeaseLostError,
    NanoagentError,
    RunBusyError,
    RunExistsError,
    RunFinishedError,
    RunNotFoundError,
    ValidationError,
)
from nanoagent_core.models import EventKind, Phase, RunState, RunStatus, Task, TaskStatus
from nanoagent_core.protocols import NewEvent, Step, Store


async def claimed(store: Store, run_id: str = "run-1", **fields: Any) -> RunState:
    await store.create_run(new_run(run_id, **fields))
    return await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)


def finishing(status: RunStatus, **fields: Any) -> Step:
    return Step(phase=Phase.DONE, iteration=1, status=status, **fields)


# -- round trip --------------------------------------------------------------------------------


async def test_create_and_get_round_trip(store: Store, clock: FakeClock) -> None:
    run = new_run("rt", agent="echo", agent_options={"model": "tiny", "temp": "0"})
    created = await store.create_run(run)
    assert created == await store.get_run("rt")
    assert created.created_at == created.updated_at == clock.now
    assert (created.goal, created.agent, created.agent_options) == (
        "write a haiku",
        "echo",
        {"model": "tiny", "temp": "0"},
    )
    assert (created.status, created.phase, created.epoch, created.owner) == (
        RunStatus.RUNNING,
        Phase.PLANNING,
        0,
        None,
    )
    events = await store.read_events(run_id="rt")
    assert [(e.kind, e.run_id, e.ts) for e in events] == [("run_created", "rt", clock.now)]


async def test_create_existing_run_refused(store: Store) -> None:
    await store.create_run(new_run("dup", goal="first"))
    with pytest.raises(RunExistsError):
        await store.create_run(new_run("dup", goal="second"))
    assert (await store.get_run("dup")).goal == "first"
    assert len(await store.read_events()) == 1


async def test_tasks_results_events_round_trip(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    tasks = [task("a", 3), task("b", 7, attempts=2, failures=1, error="boom"), task("c")]
    for t in tasks:
        await store.save_task("run-1", t, epoch=run.epoch)
    await store.save_result("run-1", "b", "B done", epoch=run.epoch)
    clock.advance(5)
    done_a = tasks[0].model_copy(update={"status": TaskStatus.DONE, "result": "A done"})
    step = Step(
        phase=Phase.REFLECTING,
        iteration=1,
        current_task_id="c",
        tasks=(done_a, task("d", 10)),
        results={"a": "A done"},
        events=(
            NewEvent(kind="task_done", data={"task_id": "a", "nested": {"n": [1, 2.5, None]}}),
            NewEvent(kind="note", data={"text": "ünïcode ✓"}),
        ),
    )
    after = await store.commit_step("run-1", step, epoch=run.epoch)

    expected_tasks = [
        done_a.model_copy(update={"seq": 0}),
        tasks[1].model_copy(update={"seq": 1}),
        tasks[2].model_copy(update={"seq": 2}),
        task("d", 10).model_copy(update={"seq": 3}),
    ]
    assert await store.get_all_tasks("run-1") == expected_tasks
    results = await store.get_all_results("run-1")
    assert list(results.items()) == [("a", "A done"), ("b", "B done")]  # in task order
    assert after == await store.get_run("run-1")
    assert (after.phase, after.iteration, after.current_task_id) == (Phase.REFLECTING, 1, "c")
    assert (after.tasks_total, after.tasks_done, after.updated_at) == (4, 1, clock.now)
    events = await store.read_events(run_id="run-1")
    assert [e.kind for e in events] == ["run_created", "run_claimed", "task_done", "note"]
    assert events[2].data == {"task_id": "a", "nested": {"n": [1, 2.5, None]}}
    assert events[3].data == {"text": "ünïcode ✓"}
    assert events[2].ts == clock.now


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_task_counters_follow_every_change(store: Store, seed: int) -> None:
    """The run's tasks_total/tasks_done (kept by difference, not recounted) equal what its
    tasks say after any mix of saves and steps: new and known ids, several changes of one id
    in one step, done -> pending -> done, a refused step, and another run with the same ids."""
    rng = random.Random(seed)
    run = await claimed(store)
    other = await claimed(store, "other")
    await store.save_task("other", task("t0", status=TaskStatus.DONE), epoch=other.epoch)
    ids = [f"t{n}" for n in range(8)]

    def some_task() -> Task:
        return task(rng.choice(ids), rng.randint(1, 10), status=rng.choice(list(TaskStatus)))

    for turn in range(40):
        if rng.random() < 0.3:
            await store.save_task("run-1", some_task(), epoch=run.epoch)
        else:
            changes = tuple(some_task() for _ in range(rng.randint(0, 5)))
            step = Step(phase=Phase.EXECUTING, iteration=turn, tasks=changes)
            if rng.random() < 0.15:
                with pytest.raises(LeaseLostError):
                    await store.commit_step("run-1", step, epoch=run.epoch + 1)
            else:
                await store.commit_step("run-1", step, epoch=run.epoch)
        tasks = await store.get_all_tasks("run-1")
        done = sum(t.status is TaskStatus.DONE for t in tasks)
        counted = await store.get_run("run-1")
        assert (counted.tasks_total, counted.tasks_done) == (len(tasks), done), turn
    assert (
        (await store.get_run("other")).tasks_total,
        (await store.get_run("other")).tasks_done,
    ) == (1, 1)


async def test_update_loop_state_moves_position_only(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    clock.advance(3)
    moved = await store.update_loop_state(
        "run-1", epoch=run.epoch, phase=Phase.EXECUTING, iteration=2, current_task_id="x"
    )
    assert (moved.phase, moved.iteration, moved.current_task_id) == (Phase.EXECUTING, 2, "x")
    assert moved.updated_at == clock.now
    assert moved == await store.get_run("run-1")
    assert (moved.status, moved.epoch, moved.owner) == (run.status, run.epoch, run.owner)


async def test_pending_tasks_by_priority_then_insertion(store: Store) -> None:
    run = await claimed(store)
    for tid, priority in [("p5a", 5), ("p9a", 9), ("p5b", 5), ("p1", 1), ("p9b", 9), ("p5c", 5)]:
        await store.save_task("run-1", task(tid, priority), epoch=run.epoch)
    await store.save_task("run-1", task("p10", 10, status=TaskStatus.DONE), epoch=run.epoch)
    # Re-saving a known task changes it in place: it keeps its insertion position.
    await store.save_task("run-1", task("p5a", 5, attempts=1), epoch=run.epoch)
    pending = await store.get_pending_tasks("run-1")
    assert [t.id for t in pending] == ["p9a", "p9b", "p5a", "p5b", "p5c", "p1"]
    assert pending[2].attempts == 1
    all_ids = [t.id for t in await store.get_all_tasks("run-1")]
    assert all_ids == ["p5a", "p9a", "p5b", "p1", "p9b", "p5c", "p10"]


async def test_runs_with_the_same_task_ids_stay_independent(store: Store) -> None:
    one = await claimed(store, "one")
    two = await claimed(store, "two")
    await store.save_task("one", task("t1", 2), epoch=one.epoch)
    await store.save_task("two", task("t1", 9), epoch=two.epoch)
    await store.save_task("two", task("t2", 1), epoch=two.epoch)
    await store.save_result("one", "t1", "from one", epoch=one.epoch)
    await store.commit_step(
        "two",
        Step(
            phase=Phase.EXECUTING,
            iteration=1,
            tasks=(task("t1", 9, status=TaskStatus.DONE),),
            results={"t1": "from two"},
        ),
        epoch=two.epoch,
    )
    assert [(t.id, t.priority, t.status) for t in await store.get_all_tasks("one")] == [
        ("t1", 2, TaskStatus.PENDING)
    ]
    assert [t.id for t in await store.get_pending_tasks("two")] == ["t2"]
    assert await store.get_all_results("one") == {"t1": "from one"}
    assert await store.get_all_results("two") == {"t1": "from two"}
    assert ((await store.get_run("one")).tasks_total, (await store.get_run("two")).tasks_done) == (
        1,
        1,
    )
    assert {e.run_id for e in await store.read_events(run_id="one")} == {"one"}


# -- listing -----------------------------------------------------------------------------------


async def test_list_runs_filters_order_and_paging(store: Store, clock: FakeClock) -> None:
    goals = {
        "alpha": "make 100% sure",
        "beta": "snake_case names",
        "gamma": "Make it SNAKE-ish",
        "delta": "plain goal",
    }
    for run_id, goal in goals.items():
        await store.create_run(new_run(run_id, goal=goal))
        clock.advance(1)
    run = await store.claim_run("beta", OWNER, expected_epoch=0, lease_seconds=30)
    clock.advance(1)
    await store.commit_step("beta", finishing(RunStatus.COMPLETED), epoch=run.epoch)

    ids = [r.run_id for r in await store.list_runs()]
    assert ids == ["beta", "delta", "gamma", "alpha"]  # newest activity first
    assert [r.run_id for r in await store.list_runs(limit=2)] == ["beta", "delta"]
    assert [r.run_id for r in await store.list_runs(limit=2, offset=2)] == ["gamma", "alpha"]
    assert await store.list_runs(offset=4) == []
    assert await store.list_runs(limit=0) == []

    completed = await store.list_runs(statuses=[RunStatus.COMPLETED])
    assert [r.run_id for r in completed] == ["beta"]
    running = await store.list_runs(statuses=[RunStatus.RUNNING, RunStatus.FAILED])
    assert [r.run_id for r in running] == ["delta", "gamma", "alpha"]
    assert await store.list_runs(statuses=[]) == []

    # '%' and '_' are literal characters, not wildcards; matching ignores ASCII case.
    assert [r.run_id for r in await store.list_runs(text="%")] == ["alpha"]
    assert [r.run_id for r in await store.list_runs(text="e_c")] == ["beta"]
    assert [r.run_id for r in await store.list_runs(text="_")] == ["beta"]
    assert [r.run_id for r in await store.list_runs(text="snake")] == ["beta", "gamma"]
    assert [r.run_id for r in await store.list_runs(text="ALPH")] == ["alpha"]  # by id
    assert await store.list_runs(text="100_") == []
    assert await store.list_runs(text="\\") == []
    both = await store.list_runs(text="snake", statuses=[RunStatus.RUNNING])
    assert [r.run_id for r in both] == ["gamma"]


async def test_list_runs_ties_broken_by_run_id(store: Store) -> None:
    for run_id in ["c", "a", "b"]:
        await store.create_run(new_run(run_id))  # the clock does not move: equal activity
    assert [r.run_id for r in await store.list_runs()] == ["a", "b", "c"]


async def test_count_runs(store: Store) -> None:
    assert await store.count_runs() == {}
    for run_id in ["a", "b", "c", "d"]:
        await store.create_run(new_run(run_id))
    run = await store.claim_run("a", OWNER, expected_epoch=0, lease_seconds=30)
    await store.commit_step("a", finishing(RunStatus.COMPLETED), epoch=run.epoch)
    await store.abort_unowned("b", expected_epoch=0, reason="stop")
    assert await store.count_runs() == {
        RunStatus.RUNNING: 2,
        RunStatus.COMPLETED: 1,
        RunStatus.ABORTED: 1,
    }


# -- fencing -----------------------------------------------------------------------------------

FencedWrite = Callable[[Store, int], Awaitable[object]]

FENCED_WRITES: dict[str, FencedWrite] = {
    "commit_step": lambda s, epoch: s.commit_step(
        "run-1",
        Step(
            phase=Phase.EXECUTING,
            iteration=9,
            current_task_id="z",
            tasks=(task("z"),),
            results={"z": "zombie"},
            events=(NewEvent(kind="task_done"),),
            status=RunStatus.COMPLETED,
        ),
        epoch=epoch,
    ),
    "save_task": lambda s, epoch: s.save_task("run-1", task("z"), epoch=epoch),
    "save_result": lambda s, epoch: s.save_result("run-1", "a", "zombie", epoch=epoch),
    "update_loop_state": lambda s, epoch: s.update_loop_state(
        "run-1", epoch=epoch, phase=Phase.DONE, iteration=9, current_task_id=None
    ),
    "renew_lease": lambda s, epoch: s.renew_lease("run-1", epoch=epoch, lease_seconds=999),
}


@pytest.mark.parametrize("write", FENCED_WRITES.values(), ids=FENCED_WRITES.keys())
async def test_stale_epoch_write_raises_and_writes_nothing(
    store: Store, clock: FakeClock, write: FencedWrite
) -> None:
    old = await claimed(store)
    await store.save_task("run-1", task("a"), epoch=old.epoch)
    clock.advance(31)  # the old holder's lease expired; another worker takes over
    new = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=old.epoch, lease_seconds=30)
    assert new.epoch == old.epoch + 1
    before = await snapshot(store, "run-1")
    clock.advance(1)
    with pytest.raises(LeaseLostError) as raised:
        await write(store, old.epoch)
    assert "\n" not in str(raised.value)
    assert await snapshot(store, "run-1") == before
    await write(store, new.epoch)  # the current holder's same write goes through
    assert await snapshot(store, "run-1") != before


@pytest.mark.parametrize("write", FENCED_WRITES.values(), ids=FENCED_WRITES.keys())
async def test_fenced_write_to_unknown_run(store: Store, write: FencedWrite) -> None:
    with pytest.raises(RunNotFoundError):
        await write(store, 0)
    assert await store.read_events() == []


async def test_renew_lease_extends_lease(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    clock.advance(20)
    renewed = await store.renew_lease("run-1", epoch=run.epoch, lease_seconds=30)
    assert renewed.heartbeat_at == clock.now
    assert renewed.lease_expires_at == clock.now + timedelta(seconds=30)
    assert renewed == await store.get_run("run-1")
    clock.advance(29)  # past the first lease, within the renewed one
    with pytest.raises(RunBusyError):
        await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)


async def test_renew_lease_after_the_run_ended(store: Store) -> None:
    run = await claimed(store)
    await store.commit_step("run-1", finishing(RunStatus.INTERRUPTED), epoch=run.epoch)
    with pytest.raises(LeaseLostError):
        await store.renew_lease("run-1", epoch=run.epoch, lease_seconds=30)
    assert (await store.get_run("run-1")).lease_expires_at is None


# -- claims ------------------------------------------------------------------------------------


async def test_claim_free_run_bumps_epoch(store: Store, clock: FakeClock) -> None:
    await store.create_run(new_run())
    run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    assert (run.epoch, run.owner, run.status) == (1, OWNER, RunStatus.RUNNING)
    assert run.heartbeat_at == clock.now
    assert run.lease_expires_at == clock.now + timedelta(seconds=30)
    assert run == await store.get_run("run-1")
    claim_event = (await store.read_events(run_id="run-1"))[-1]
    assert (claim_event.kind, claim_event.data["epoch"]) == (EventKind.RUN_CLAIMED, 1)


async def test_claim_of_live_leased_run_is_busy(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    before = await snapshot(store, "run-1")
    clock.advance(29.999)
    with pytest.raises(RunBusyError):
        await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    assert await snapshot(store, "run-1") == before


async def test_claim_with_wrong_expected_epoch_is_busy(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    clock.advance(3600)  # even with the lease long gone
    before = await snapshot(store, "run-1")
    for wrong in (run.epoch - 1, run.epoch + 1):
        with pytest.raises(RunBusyError):
            await store.claim_run("run-1", OTHER_OWNER, expected_epoch=wrong, lease_seconds=30)
    assert await snapshot(store, "run-1") == before


async def test_claim_after_lease_expiry(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    clock.advance(30)  # the lease ends exactly now
    again = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=5)
    assert (again.epoch, again.owner) == (run.epoch + 1, OTHER_OWNER)
    assert again.lease_expires_at == clock.now + timedelta(seconds=5)


async def test_claim_with_owner_gone(store: Store) -> None:
    run = await claimed(store)
    again = await store.claim_run(
        "run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30, owner_gone=True
    )
    assert (again.epoch, again.owner) == (run.epoch + 1, OTHER_OWNER)


async def test_claim_of_completed_run_is_refused(store: Store) -> None:
    run = await claimed(store)
    await store.commit_step("run-1", finishing(RunStatus.COMPLETED), epoch=run.epoch)
    before = await snapshot(store, "run-1")
    with pytest.raises(RunFinishedError):
        await store.claim_run(
            "run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30, owner_gone=True
        )
    assert await snapshot(store, "run-1") == before


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.ABORTED, RunStatus.INTERRUPTED])
async def test_resumable_run_can_be_claimed_again(store: Store, status: RunStatus) -> None:
    run = await claimed(store)
    ended = await store.commit_step("run-1", finishing(status, error="it broke"), epoch=run.epoch)
    assert (ended.status, ended.owner, ended.lease_expires_at, ended.error) == (
        status,
        None,
        None,
        "it broke",
    )
    assert (ended.finished_at is not None) == status.finished
    again = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    assert (again.status, again.epoch, again.owner) == (
        RunStatus.RUNNING,
        run.epoch + 1,
        OTHER_OWNER,
    )
    assert (again.error, again.finished_at, again.abort_requested_at) == (None, None, None)


async def test_completing_step_records_result_and_releases(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    clock.advance(2)
    done = await store.commit_step(
        "run-1", finishing(RunStatus.COMPLETED, result="a haiku"), epoch=run.epoch
    )
    assert (done.status, done.result, done.finished_at, done.owner) == (
        RunStatus.COMPLETED,
        "a haiku",
        clock.now,
        None,
    )
    assert done.epoch == run.epoch  # ending a run does not move the epoch
    assert done == await store.get_run("run-1")


# -- abort -------------------------------------------------------------------------------------


async def test_request_abort_is_idempotent(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    clock.advance(1)
    first = await store.request_abort("run-1")
    assert first.abort_requested_at == clock.now
    clock.advance(1)
    second = await store.request_abort("run-1")
    assert second.abort_requested_at == first.abort_requested_at
    assert second == await store.get_run("run-1")
    kinds = [e.kind for e in await store.read_events(run_id="run-1")]
    assert kinds.count(EventKind.ABORT_REQUESTED) == 1
    # The request changes nothing the holder depends on: its writes still go through.
    await store.save_task("run-1", task("a"), epoch=run.epoch)


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABORTED])
async def test_request_abort_refused_on_finished_run(store: Store, status: RunStatus) -> None:
    run = await claimed(store)
    await store.commit_step("run-1", finishing(status), epoch=run.epoch)
    before = await snapshot(store, "run-1")
    with pytest.raises(RunFinishedError):
        await store.request_abort("run-1")
    assert await snapshot(store, "run-1") == before


async def test_claim_clears_abort_request(store: Store) -> None:
    run = await claimed(store)
    await store.request_abort("run-1")
    await store.commit_step("run-1", finishing(RunStatus.INTERRUPTED), epoch=run.epoch)
    again = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    assert again.abort_requested_at is None


async def test_abort_unowned_fences_old_holder(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    await store.update_loop_state(
        "run-1", epoch=run.epoch, phase=Phase.EXECUTING, iteration=3, current_task_id="t"
    )
    clock.advance(60)
    aborted = await store.abort_unowned("run-1", expected_epoch=run.epoch, reason="worker gone")
    assert (aborted.status, aborted.epoch, aborted.owner, aborted.lease_expires_at) == (
        RunStatus.ABORTED,
        run.epoch + 1,
        None,
        None,
    )
    assert (aborted.finished_at, aborted.abort_requested_at, aborted.error) == (
        clock.now,
        clock.now,
        "worker gone",
    )
    assert aborted == await store.get_run("run-1")
    last = (await store.read_events(run_id="run-1"))[-1]
    assert (last.kind, last.data) == (
        EventKind.RUN_ABORTED,
        {"reason": "worker gone", "phase": "executing", "iteration": 3, "task_id": "t"},
    )
    before = await snapshot(store, "run-1")
    with pytest.raises(LeaseLostError):  # the zombie wakes up and tries to go on
        await store.commit_step("run-1", Step(phase=Phase.REFLECTING, iteration=3), epoch=run.epoch)
    with pytest.raises(RunFinishedError):
        await store.abort_unowned("run-1", expected_epoch=aborted.epoch, reason="again")
    assert await snapshot(store, "run-1") == before


async def test_abort_unowned_with_moved_epoch_is_busy(store: Store) -> None:
    await store.create_run(new_run())
    before = await snapshot(store, "run-1")
    with pytest.raises(RunBusyError):
        await store.abort_unowned("run-1", expected_epoch=1, reason="stop")
    assert await snapshot(store, "run-1") == before


# -- atomicity ---------------------------------------------------------------------------------


async def test_step_naming_unknown_task_leaves_nothing(store: Store, clock: FakeClock) -> None:
    run = await claimed(store)
    await store.save_task("run-1", task("known"), epoch=run.epoch)
    before = await snapshot(store, "run-1")
    clock.advance(1)
    bad = Step(
        phase=Phase.REFLECTING,
        iteration=4,
        current_task_id="new",
        tasks=(task("new"), task("known", status=TaskStatus.DONE)),
        results={"new": "ok", "known": "ok", "ghost": "no such task"},
        events=(NewEvent(kind="task_done"),),
        status=RunStatus.COMPLETED,
    )
    with pytest.raises(ValidationError, match="ghost"):
        await store.commit_step("run-1", bad, epoch=run.epoch)
    assert await snapshot(store, "run-1") == before
    with pytest.raises(ValidationError, match="ghost"):
        await store.save_result("run-1", "ghost", "no such task", epoch=run.epoch)
    assert await snapshot(store, "run-1") == before


async def test_step_may_name_a_task_it_creates(store: Store) -> None:
    run = await claimed(store)
    step = Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("n"),), results={"n": "r"})
    await store.commit_step("run-1", step, epoch=run.epoch)
    assert await store.get_all_results("run-1") == {"n": "r"}


# -- events ------------------------------------------------------------------------------------


async def test_event_ids_gap_free_across_runs(store: Store) -> None:
    runs = {rid: await claimed(store, rid) for rid in ("x", "y", "z")}
    for i in range(5):
        for rid, run in runs.items():
            await store.commit_step(
                rid,
                Step(
                    phase=Phase.EXECUTING,
                    iteration=i,
                    events=tuple(NewEvent(kind="note", data={"i": i, "k": k}) for k in range(i)),
                ),
                epoch=run.epoch,
            )
        await store.append_event("y", NewEvent(kind="note", data={"extra": i}))
    events = await store.read_events(limit=10_000)
    total = 3 * 2 + 3 * sum(range(5)) + 5
    assert [e.id for e in events] == list(range(1, total + 1))

    assert [e.id for e in await store.read_events(after_id=10, limit=5)] == [11, 12, 13, 14, 15]
    assert await store.read_events(after_id=total) == []
    y_events = await store.read_events(run_id="y", limit=10_000)
    assert y_events == [e for e in events if e.run_id == "y"]
    after = y_events[3].id
    assert await store.read_events(run_id="y", after_id=after, limit=2) == y_events[4:6]
    assert await store.read_events(run_id="nobody") == []


async def test_append_event(store: Store, clock: FakeClock) -> None:
    await store.create_run(new_run())
    clock.advance(1)
    event = await store.append_event("run-1", NewEvent(kind="note", data={"text": "hi"}))
    assert (event.id, event.run_id, event.ts, event.kind, event.data) == (
        2,
        "run-1",
        clock.now,
        "note",
        {"text": "hi"},
    )
    assert (await store.read_events(after_id=1)) == [event]


# -- unknown runs and errors -------------------------------------------------------------------

UNKNOWN_RUN_CALLS: dict[str, Callable[[Store], Awaitable[object]]] = {
    "get_run": lambda s: s.get_run("nope"),
    "claim_run": lambda s: s.claim_run("nope", OWNER, expected_epoch=0, lease_seconds=1),
    "request_abort": lambda s: s.request_abort("nope"),
    "abort_unowned": lambda s: s.abort_unowned("nope", expected_epoch=0, reason="x"),
    "append_event": lambda s: s.append_event("nope", NewEvent(kind="note")),
}


@pytest.mark.parametrize("call", UNKNOWN_RUN_CALLS.values(), ids=UNKNOWN_RUN_CALLS.keys())
async def test_unknown_run_id(store: Store, call: Callable[[Store], Awaitable[object]]) -> None:
    await store.create_run(new_run("other"))
    with pytest.raises(RunNotFoundError, match="nope"):
        await call(store)
    assert len(await store.read_events()) == 1


async def test_unknown_run_reads_are_empty(store: Store) -> None:
    assert await store.get_all_tasks("nope") == []
    assert await store.get_pending_tasks("nope") == []
    assert await store.get_all_results("nope") == {}


@pytest.mark.parametrize("bad_id", ["", "has space", "a/b", "../x", "x" * 65, "ü"])
async def test_invalid_run_id_refused(store: Store, bad_id: str) -> None:
    with pytest.raises(ValidationError):
        await store.get_run(bad_id)
    with pytest.raises(ValidationError):
        await store.claim_run(bad_id, OWNER, expected_epoch=0, lease_seconds=1)
    with pytest.raises(ValidationError):
        await store.request_abort(bad_id)


async def test_every_refusal_is_a_nanoagent_error_of_one_line(store: Store) -> None:
    run = await claimed(store)
    attempts: list[Awaitable[object]] = [
        store.create_run(new_run()),
        store.get_run("missing"),
        store.get_run("bad id"),
        store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=1),
        store.save_task("run-1", task("t"), epoch=0),
        store.commit_step(
            "run-1", Step(phase=Phase.DONE, iteration=0, results={"q": "r"}), epoch=1
        ),
        store.abort_unowned("run-1", expected_epoch=0, reason="x"),
    ]
    for attempt in attempts:
        with pytest.raises(NanoagentError) as raised:
            await attempt
        message = str(raised.value)
        assert message
        assert "\n" not in message


async def test_nothing_written_keeps_other_runs_intact(store: Store) -> None:
    """A refused write to one run never touches another run's rows."""
    one = await claimed(store, "one")
    await store.save_task("one", task("t"), epoch=one.epoch)
    await claimed(store, "two")
    before = await snapshot(store, "one")
    with pytest.raises(LeaseLostError):
        await store.save_task("two", task("t", 9), epoch=one.epoch + 5)
    assert await snapshot(store, "one") == before


def test_task_and_run_models_are_frozen() -> None:
    t: Task = task("x")
    with pytest.raises(Exception, match="frozen"):
        t.priority = 9  # pyright: ignore[reportAttributeAccessIssue]


async def test_event_data_is_stored_as_json(store: Store) -> None:
    run = await claimed(store)
    data = {"pair": (1, 2), "text": "x"}
    appended = await store.append_event("run-1", NewEvent(kind="note", data=data))
    await store.commit_step(
        "run-1",
        Step(phase=Phase.EXECUTING, iteration=1, events=(NewEvent(kind="note", data=data),)),
        epoch=run.epoch,
    )
    as_json = {"pair": [1, 2], "text": "x"}
    assert appended.data == as_json
    assert [e.data for e in (await store.read_events(run_id="run-1"))[-2:]] == [as_json] * 2


async def test_event_data_that_is_not_json_is_refused(store: Store) -> None:
    run = await claimed(store)
    before = await snapshot(store, "run-1")
    bad = NewEvent(kind="note", data={"when": object()})
    with pytest.raises(ValidationError, match="not JSON"):
        await store.append_event("run-1", bad)
    with pytest.raises(ValidationError, match="not JSON"):
        await store.commit_step(
            "run-1",
            Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("a"),), events=(bad,)),
            epoch=run.epoch,
        )
    assert await snapshot(store, "run-1") == before


async def test_read_events_limit(store: Store) -> None:
    await store.create_run(new_run())
    for i in range(4):
        await store.append_event("run-1", NewEvent(kind="note", data={"i": i}))
    assert await store.read_events(limit=0) == []
    assert await store.read_events(limit=-1) == []
    assert [e.id for e in await store.read_events(limit=2)] == [1, 2]
    assert [e.id for e in await store.read_events(run_id="run-1", after_id=3)] == [4, 5]


async def test_get_runs_keeps_order_and_skips_unknown(store: Store) -> None:
    for run_id in ["a", "b", "c"]:
        await store.create_run(new_run(run_id))
    runs = await store.get_runs(["c", "nope", "a"])
    assert [r.run_id for r in runs] == ["c", "a"]
    assert runs == [await store.get_run("c"), await store.get_run("a")]
    assert await store.get_runs([]) == []


async def test_get_run_detail_matches_separate_reads(store: Store) -> None:
    run = await claimed(store)
    await store.commit_step(
        "run-1",
        Step(
            phase=Phase.EXECUTING,
            iteration=1,
            tasks=(task("b", 2), task("a", 9)),
            results={"a": "A", "b": "B"},
        ),
        epoch=run.epoch,
    )
    detail = await store.get_run_detail("run-1")
    assert detail == (
        await store.get_run("run-1"),
        await store.get_all_tasks("run-1"),
        await store.get_all_results("run-1"),
    )
    assert [t.id for t in detail[1]] == ["b", "a"]
    with pytest.raises(RunNotFoundError):
        await store.get_run_detail("nope")


# -- closing -------------------------------------------------------------------------------------


async def test_a_closed_store_says_so_on_every_call(store: Store) -> None:
    run = await claimed(store)
    await store.close()
    await store.close()  # closing twice is fine
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get_run("run-1"),
        store.list_runs,
        lambda: store.create_run(new_run("late")),
        lambda: store.commit_step("run-1", Step(phase=Phase.EXECUTING, iteration=1), epoch=1),
        lambda: store.renew_lease("run-1", epoch=run.epoch, lease_seconds=30),
        store.read_events,
        store.change_token,
    ]
    for call in calls:
        with pytest.raises(DatabaseError) as raised:
            await call()
        assert "closed" in str(raised.value)
        assert "\n" not in str(raised.value)
