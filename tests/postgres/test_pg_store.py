"""The store contract against PostgreSQL, on a real server, with the database's own clock.

Leases are real and short (tenths of a second); nothing here injects a clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from pgkit import new_run, sql_rows

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
from nanoagent_core.models import (
    Event,
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
)
from nanoagent_core.postgres import PostgresStore, split_location
from nanoagent_core.protocols import NewEvent, Step

OWNER = Owner(host="test-host", pid=4242, pid_started=17.0)
OTHER_OWNER = Owner(host="test-host", pid=4343, pid_started=18.0)
REMOTE_OWNER = Owner(host="remote-host", pid=4444, pid_started=19.0)


def task(task_id: str, priority: int = 5, **fields: object) -> Task:
    return Task(id=task_id, description=f"do {task_id}", priority=priority, **fields)  # pyright: ignore[reportArgumentType]


def finishing(status: RunStatus, **fields: object) -> Step:
    return Step(phase=Phase.DONE, iteration=1, status=status, **fields)  # pyright: ignore[reportArgumentType]


async def claimed(
    store: PostgresStore, run_id: str = "run-1", *, lease: float = 30.0, owner: Owner = OWNER
) -> RunState:
    await store.create_run(new_run(run_id))
    return await store.claim_run(run_id, owner, expected_epoch=0, lease_seconds=lease)


@dataclass(frozen=True)
class Snapshot:
    run: RunState
    tasks: list[Task]
    results: dict[str, str]
    events: list[Event]
    counts: dict[RunStatus, int] = field(default_factory=dict[RunStatus, int])


async def snapshot(store: PostgresStore, run_id: str) -> Snapshot:
    return Snapshot(
        run=await store.get_run(run_id),
        tasks=await store.get_all_tasks(run_id),
        results=await store.get_all_results(run_id),
        events=await store.read_events(limit=1_000_000),
        counts=await store.count_runs(),
    )


def db_now(pg_url: str) -> datetime:
    value = sql_rows(pg_url, "SELECT now()")[0][0]
    assert isinstance(value, datetime)
    return value


async def expire(run: RunState) -> None:
    """Sleep until ``run``'s lease is over (by the database's clock, which is this host's)."""
    assert run.lease_expires_at is not None
    await asyncio.sleep((run.lease_expires_at - datetime.now(UTC)).total_seconds() + 0.05)


# -- round trip --------------------------------------------------------------------------------


async def test_round_trip(store: PostgresStore, pg_url: str) -> None:
    before = db_now(pg_url)
    created = await store.create_run(
        new_run("rt", agent="echo", agent_options={"model": "tiny", "temp": "0"})
    )
    after = db_now(pg_url)
    assert created == await store.get_run("rt")
    assert created.created_at.tzinfo is UTC
    assert before <= created.created_at == created.updated_at <= after
    assert (created.agent, created.agent_options) == ("echo", {"model": "tiny", "temp": "0"})
    run = await store.claim_run("rt", OWNER, expected_epoch=0, lease_seconds=30)
    tasks = [task("a", 3), task("b", 7, attempts=2, failures=1, error="boom"), task("c")]
    for t in tasks:
        await store.save_task("rt", t, epoch=run.epoch)
    await store.save_result("rt", "b", "B done", epoch=run.epoch)
    done_a = tasks[0].model_copy(update={"status": TaskStatus.DONE, "result": "A done"})
    step = Step(
        phase=Phase.REFLECTING,
        iteration=1,
        current_task_id="c",
        tasks=(done_a, task("d", 10)),
        results={"a": "A done"},
        events=(
            NewEvent(kind="task_done", data={"task_id": "a", "nested": {"n": [1, 2.5, None]}}),
            NewEvent(kind="note", data={"text": "ünïcode ✓ \\ % _ '"}),
        ),
    )
    stepped = await store.commit_step("rt", step, epoch=run.epoch)
    expected = [
        done_a.model_copy(update={"seq": 0}),
        tasks[1].model_copy(update={"seq": 1}),
        tasks[2].model_copy(update={"seq": 2}),
        task("d", 10).model_copy(update={"seq": 3}),
    ]
    assert await store.get_all_tasks("rt") == expected
    assert list((await store.get_all_results("rt")).items()) == [("a", "A done"), ("b", "B done")]
    assert stepped == await store.get_run("rt")
    assert (stepped.phase, stepped.iteration, stepped.current_task_id) == (
        Phase.REFLECTING,
        1,
        "c",
    )
    assert (stepped.tasks_total, stepped.tasks_done) == (4, 1)
    events = await store.read_events(run_id="rt")
    assert [e.kind for e in events] == ["run_created", "run_claimed", "task_done", "note"]
    assert events[2].data == {"task_id": "a", "nested": {"n": [1, 2.5, None]}}
    assert events[3].data == {"text": "ünïcode ✓ \\ % _ '"}
    assert events[2].ts == events[3].ts == stepped.updated_at  # one transaction, one time
    detail = await store.get_run_detail("rt")
    assert detail == (stepped, expected, {"a": "A done", "b": "B done"})


async def test_create_existing_run_refused(store: PostgresStore) -> None:
    await store.create_run(new_run("dup", goal="first"))
    with pytest.raises(RunExistsError):
        await store.create_run(new_run("dup", goal="second"))
    assert (await store.get_run("dup")).goal == "first"
    assert len(await store.read_events()) == 1


async def test_get_runs_keeps_order_and_skips_unknown(store: PostgresStore) -> None:
    for run_id in ("a", "b", "c"):
        await store.create_run(new_run(run_id))
    runs = await store.get_runs(["c", "nope", "a"])
    assert [r.run_id for r in runs] == ["c", "a"]
    assert await store.get_runs([]) == []


async def test_update_loop_state_moves_position_only(store: PostgresStore) -> None:
    run = await claimed(store)
    moved = await store.update_loop_state(
        "run-1", epoch=run.epoch, phase=Phase.EXECUTING, iteration=2, current_task_id="x"
    )
    assert (moved.phase, moved.iteration, moved.current_task_id) == (Phase.EXECUTING, 2, "x")
    assert moved.updated_at > run.updated_at
    assert moved == await store.get_run("run-1")
    assert (moved.status, moved.epoch, moved.owner) == (run.status, run.epoch, run.owner)


async def test_pending_tasks_by_priority_then_insertion(store: PostgresStore) -> None:
    run = await claimed(store)
    for tid, priority in [("p5a", 5), ("p9a", 9), ("p5b", 5), ("p1", 1), ("p9b", 9), ("p5c", 5)]:
        await store.save_task("run-1", task(tid, priority), epoch=run.epoch)
    await store.save_task("run-1", task("p10", 10, status=TaskStatus.DONE), epoch=run.epoch)
    await store.save_task("run-1", task("p5a", 5, attempts=1), epoch=run.epoch)
    pending = await store.get_pending_tasks("run-1")
    assert [t.id for t in pending] == ["p9a", "p9b", "p5a", "p5b", "p5c", "p1"]
    assert pending[2].attempts == 1
    all_tasks = await store.get_all_tasks("run-1")
    assert [(t.id, t.seq) for t in all_tasks] == [
        ("p5a", 0), ("p9a", 1), ("p5b", 2), ("p1", 3), ("p9b", 4), ("p5c", 5), ("p10", 6),
    ]  # fmt: skip
    assert (
        (await store.get_run("run-1")).tasks_total,
        (await store.get_run("run-1")).tasks_done,
    ) == (7, 1)


async def test_runs_with_the_same_task_ids_stay_independent(store: PostgresStore) -> None:
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
    assert {e.run_id for e in await store.read_events(run_id="one")} == {"one"}


async def test_two_schemas_in_one_database_are_independent(
    store: PostgresStore, pg_url: str
) -> None:
    from pgkit import drop_schema, new_schema_name

    name = new_schema_name()
    other = await PostgresStore.open(pg_url, schema=name)
    try:
        await store.create_run(new_run("same"))
        await other.create_run(new_run("same", goal="elsewhere"))
        assert (await store.get_run("same")).goal == "write a haiku"
        assert (await other.get_run("same")).goal == "elsewhere"
        assert [e.id for e in await other.read_events()] == [1]
    finally:
        await other.close()
        drop_schema(pg_url, name)


# -- listing -----------------------------------------------------------------------------------


async def test_list_runs_filters_order_and_paging(store: PostgresStore) -> None:
    goals = {
        "alpha": "make 100% sure",
        "beta": "snake_case names",
        "gamma": "Make it SNAKE-ish",
        "delta": "plain goal",
    }
    for run_id, goal in goals.items():
        await store.create_run(new_run(run_id, goal=goal))
    run = await store.claim_run("beta", OWNER, expected_epoch=0, lease_seconds=30)
    await store.commit_step("beta", finishing(RunStatus.COMPLETED), epoch=run.epoch)

    assert [r.run_id for r in await store.list_runs()] == ["beta", "delta", "gamma", "alpha"]
    assert [r.run_id for r in await store.list_runs(limit=2)] == ["beta", "delta"]
    assert [r.run_id for r in await store.list_runs(limit=2, offset=2)] == ["gamma", "alpha"]
    assert await store.list_runs(offset=4) == []
    assert await store.list_runs(limit=0) == []
    assert await store.list_runs(limit=-3) == []
    completed = await store.list_runs(statuses=[RunStatus.COMPLETED])
    assert [r.run_id for r in completed] == ["beta"]
    running = await store.list_runs(statuses=[RunStatus.RUNNING, RunStatus.FAILED])
    assert [r.run_id for r in running] == ["delta", "gamma", "alpha"]
    assert await store.list_runs(statuses=[]) == []
    # '%' and '_' are literal characters, not wildcards; matching ignores case.
    assert [r.run_id for r in await store.list_runs(text="%")] == ["alpha"]
    assert [r.run_id for r in await store.list_runs(text="e_c")] == ["beta"]
    assert [r.run_id for r in await store.list_runs(text="snake")] == ["beta", "gamma"]
    assert [r.run_id for r in await store.list_runs(text="ALPH")] == ["alpha"]
    assert await store.list_runs(text="100_") == []
    assert await store.list_runs(text="\\") == []
    both = await store.list_runs(text="snake", statuses=[RunStatus.RUNNING])
    assert [r.run_id for r in both] == ["gamma"]


async def test_list_runs_ties_broken_by_run_id_in_byte_order(pg_url: str, schema: str) -> None:
    frozen = datetime(2026, 1, 1, tzinfo=UTC)
    store = await PostgresStore.open(pg_url, schema=schema, clock=lambda: frozen)
    try:
        for run_id in ["c", "a", "B", "b"]:
            await store.create_run(new_run(run_id))  # the clock does not move
        assert [r.run_id for r in await store.list_runs()] == ["B", "a", "b", "c"]
        assert (await store.get_run("a")).created_at == frozen  # an injected clock is used
    finally:
        await store.close()


async def test_count_runs(store: PostgresStore) -> None:
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

FencedWrite = Callable[[PostgresStore, int], Awaitable[object]]

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
    store: PostgresStore, write: FencedWrite
) -> None:
    old = await claimed(store, lease=0.2)
    await store.save_task("run-1", task("a"), epoch=old.epoch)
    await expire(old)  # the old holder's lease ran out: another worker takes over
    new = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=old.epoch, lease_seconds=30)
    assert new.epoch == old.epoch + 1
    before = await snapshot(store, "run-1")
    with pytest.raises(LeaseLostError) as raised:
        await write(store, old.epoch)
    assert "\n" not in str(raised.value)
    assert await snapshot(store, "run-1") == before
    await write(store, new.epoch)  # the current holder's same write goes through
    assert await snapshot(store, "run-1") != before


@pytest.mark.parametrize("write", FENCED_WRITES.values(), ids=FENCED_WRITES.keys())
async def test_fenced_write_to_unknown_run(store: PostgresStore, write: FencedWrite) -> None:
    with pytest.raises(RunNotFoundError):
        await write(store, 0)
    assert await store.read_events() == []


async def test_renew_lease_extends_lease_by_the_database_clock(
    store: PostgresStore, pg_url: str
) -> None:
    run = await claimed(store, lease=0.3)
    await asyncio.sleep(0.2)
    before = db_now(pg_url)
    renewed = await store.renew_lease("run-1", epoch=run.epoch, lease_seconds=0.5)
    assert renewed.heartbeat_at is not None
    assert renewed.heartbeat_at >= before
    assert renewed.lease_expires_at == renewed.heartbeat_at + timedelta(seconds=0.5)
    await asyncio.sleep(0.2)  # past the first lease, within the renewed one
    with pytest.raises(RunBusyError):
        await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    await expire(renewed)
    again = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    assert again.epoch == run.epoch + 1


async def test_renew_lease_after_the_run_ended(store: PostgresStore) -> None:
    run = await claimed(store)
    await store.commit_step("run-1", finishing(RunStatus.INTERRUPTED), epoch=run.epoch)
    with pytest.raises(LeaseLostError):
        await store.renew_lease("run-1", epoch=run.epoch, lease_seconds=30)
    assert (await store.get_run("run-1")).lease_expires_at is None


# -- claims ------------------------------------------------------------------------------------


async def test_claim_free_run_bumps_epoch(store: PostgresStore) -> None:
    await store.create_run(new_run("run-1"))
    run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    assert (run.epoch, run.owner, run.status) == (1, OWNER, RunStatus.RUNNING)
    assert run.lease_expires_at == run.heartbeat_at + timedelta(seconds=30)  # pyright: ignore[reportOptionalOperand]
    assert run == await store.get_run("run-1")
    claim_event = (await store.read_events(run_id="run-1"))[-1]
    assert (claim_event.kind, claim_event.data["epoch"]) == (EventKind.RUN_CLAIMED, 1)


async def test_claim_of_live_leased_run_is_busy(store: PostgresStore) -> None:
    run = await claimed(store)
    before = await snapshot(store, "run-1")
    with pytest.raises(RunBusyError, match="live worker"):
        await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    assert await snapshot(store, "run-1") == before


async def test_claim_with_wrong_expected_epoch_is_busy(store: PostgresStore) -> None:
    run = await claimed(store, lease=0.1)
    await expire(run)  # even with the lease gone
    before = await snapshot(store, "run-1")
    for wrong in (run.epoch - 1, run.epoch + 1):
        with pytest.raises(RunBusyError):
            await store.claim_run("run-1", OTHER_OWNER, expected_epoch=wrong, lease_seconds=30)
    assert await snapshot(store, "run-1") == before


async def test_owner_gone_counts_only_for_an_owner_on_the_callers_host(
    store: PostgresStore,
) -> None:
    """A caller found the owner's process dead: believed on the same host, not from another
    host (where only the lease, by the database's clock, tells)."""
    run = await claimed(store, owner=REMOTE_OWNER)
    before = await snapshot(store, "run-1")
    with pytest.raises(RunBusyError):
        await store.claim_run(
            "run-1", OWNER, expected_epoch=run.epoch, lease_seconds=30, owner_gone=True
        )
    assert await snapshot(store, "run-1") == before
    same_host = Owner(host="remote-host", pid=9, pid_started=1.0)
    again = await store.claim_run(
        "run-1", same_host, expected_epoch=run.epoch, lease_seconds=30, owner_gone=True
    )
    assert (again.epoch, again.owner) == (run.epoch + 1, same_host)


async def test_a_host_whose_clock_runs_ahead_cannot_steal_a_live_run(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """resume on a host whose clock is an hour ahead thinks the lease expired; the database
    (whose clock decides) refuses the claim."""
    from nanoagent_core import status
    from nanoagent_core.worker import resume_run

    run = await claimed(store, owner=REMOTE_OWNER)
    monkeypatch.setattr(status, "utc_now", lambda: datetime.now(UTC) + timedelta(hours=1))
    assert status.owner_gone(run)  # this host's view
    with pytest.raises(RunBusyError):
        await resume_run(store, "run-1", heartbeat=0.1, handle_signals=False)
    assert (await store.get_run("run-1")).epoch == run.epoch


async def test_claim_of_completed_run_is_refused(store: PostgresStore) -> None:
    run = await claimed(store)
    await store.commit_step("run-1", finishing(RunStatus.COMPLETED), epoch=run.epoch)
    before = await snapshot(store, "run-1")
    with pytest.raises(RunFinishedError):
        await store.claim_run(
            "run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30, owner_gone=True
        )
    assert await snapshot(store, "run-1") == before


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.ABORTED, RunStatus.INTERRUPTED])
async def test_resumable_run_can_be_claimed_again(store: PostgresStore, status: RunStatus) -> None:
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


async def test_completing_step_records_result_and_releases(store: PostgresStore) -> None:
    run = await claimed(store)
    done = await store.commit_step(
        "run-1", finishing(RunStatus.COMPLETED, result="a haiku"), epoch=run.epoch
    )
    assert (done.status, done.result, done.finished_at, done.owner) == (
        RunStatus.COMPLETED,
        "a haiku",
        done.updated_at,
        None,
    )
    assert done.epoch == run.epoch
    assert done == await store.get_run("run-1")


async def test_racing_claims_on_separate_connections_exactly_one_wins(
    store: PostgresStore, location: str
) -> None:
    await store.create_run(new_run("race"))
    racers = [await PostgresStore.open(location) for _ in range(10)]
    try:
        owners = [Owner(host=f"h{i}", pid=i + 1, pid_started=0.0) for i in range(10)]
        outcomes = await asyncio.gather(
            *(
                r.claim_run("race", o, expected_epoch=0, lease_seconds=30)
                for r, o in zip(racers, owners, strict=True)
            ),
            return_exceptions=True,
        )
    finally:
        for racer in racers:
            await racer.close()
    won = [o for o in outcomes if isinstance(o, RunState)]
    assert len(won) == 1
    assert all(isinstance(o, RunBusyError) for o in outcomes if o not in won)
    final = await store.get_run("race")
    assert (final.epoch, final.owner) == (1, won[0].owner)
    kinds = [e.kind for e in await store.read_events(run_id="race")]
    assert kinds == ["run_created", "run_claimed"]


# -- abort -------------------------------------------------------------------------------------


async def test_request_abort_is_idempotent(store: PostgresStore) -> None:
    run = await claimed(store)
    first = await store.request_abort("run-1")
    assert first.abort_requested_at is not None
    second = await store.request_abort("run-1")
    assert second.abort_requested_at == first.abort_requested_at
    assert second == await store.get_run("run-1")
    kinds = [e.kind for e in await store.read_events(run_id="run-1")]
    assert kinds.count(EventKind.ABORT_REQUESTED) == 1
    await store.save_task("run-1", task("a"), epoch=run.epoch)  # the holder goes on


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABORTED])
async def test_request_abort_refused_on_finished_run(
    store: PostgresStore, status: RunStatus
) -> None:
    run = await claimed(store)
    await store.commit_step("run-1", finishing(status), epoch=run.epoch)
    before = await snapshot(store, "run-1")
    with pytest.raises(RunFinishedError):
        await store.request_abort("run-1")
    assert await snapshot(store, "run-1") == before


async def test_claim_clears_abort_request(store: PostgresStore) -> None:
    run = await claimed(store)
    await store.request_abort("run-1")
    await store.commit_step("run-1", finishing(RunStatus.INTERRUPTED), epoch=run.epoch)
    again = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    assert again.abort_requested_at is None


async def test_abort_unowned_fences_old_holder(store: PostgresStore) -> None:
    run = await claimed(store)
    await store.update_loop_state(
        "run-1", epoch=run.epoch, phase=Phase.EXECUTING, iteration=3, current_task_id="t"
    )
    aborted = await store.abort_unowned("run-1", expected_epoch=run.epoch, reason="worker gone")
    assert (aborted.status, aborted.epoch, aborted.owner, aborted.lease_expires_at) == (
        RunStatus.ABORTED,
        run.epoch + 1,
        None,
        None,
    )
    assert aborted.finished_at == aborted.abort_requested_at == aborted.updated_at
    assert aborted.error == "worker gone"
    last = (await store.read_events(run_id="run-1"))[-1]
    assert (last.kind, last.data) == (
        EventKind.RUN_ABORTED,
        {"reason": "worker gone", "phase": "executing", "iteration": 3, "task_id": "t"},
    )
    before = await snapshot(store, "run-1")
    with pytest.raises(LeaseLostError):
        await store.commit_step("run-1", Step(phase=Phase.REFLECTING, iteration=3), epoch=run.epoch)
    with pytest.raises(RunFinishedError):
        await store.abort_unowned("run-1", expected_epoch=aborted.epoch, reason="again")
    assert await snapshot(store, "run-1") == before


async def test_abort_unowned_with_moved_epoch_is_busy(store: PostgresStore) -> None:
    await store.create_run(new_run("run-1"))
    before = await snapshot(store, "run-1")
    with pytest.raises(RunBusyError):
        await store.abort_unowned("run-1", expected_epoch=1, reason="stop")
    assert await snapshot(store, "run-1") == before


# -- atomicity ---------------------------------------------------------------------------------


async def test_step_naming_unknown_task_leaves_nothing(store: PostgresStore) -> None:
    run = await claimed(store)
    await store.save_task("run-1", task("known"), epoch=run.epoch)
    before = await snapshot(store, "run-1")
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


async def test_step_the_server_refuses_midway_leaves_nothing(store: PostgresStore) -> None:
    """PostgreSQL text cannot hold NUL: the second task's row is refused after the first was
    written inside the transaction; all of the step rolls back, and the error is one line."""
    run = await claimed(store)
    before = await snapshot(store, "run-1")
    bad = Step(
        phase=Phase.EXECUTING,
        iteration=1,
        tasks=(task("fine"), Task(id="nul", description="a\x00b")),
        events=(NewEvent(kind="note"),),
    )
    with pytest.raises(DatabaseError) as raised:
        await store.commit_step("run-1", bad, epoch=run.epoch)
    assert "\n" not in str(raised.value)
    assert await snapshot(store, "run-1") == before
    ok = await store.commit_step(  # the store and the run are fine afterwards
        "run-1", Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("fine"),)), epoch=run.epoch
    )
    assert ok.tasks_total == 1


async def test_step_may_name_a_task_it_creates(store: PostgresStore) -> None:
    run = await claimed(store)
    step = Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("n"),), results={"n": "r"})
    await store.commit_step("run-1", step, epoch=run.epoch)
    assert await store.get_all_results("run-1") == {"n": "r"}


async def test_cancelled_commit_is_all_or_nothing(store: PostgresStore, location: str) -> None:
    """Cancelling a caller mid-commit leaves the step whole or absent, and no lock held."""
    run = await claimed(store)
    cancelled = 0
    for i in range(40):
        step = Step(
            phase=Phase.EXECUTING,
            iteration=i,
            tasks=tuple(task(f"t{i}-{k}") for k in range(5)),
            events=tuple(NewEvent(kind="note", data={"i": i, "k": k}) for k in range(5)),
        )
        pending = asyncio.ensure_future(store.commit_step("run-1", step, epoch=run.epoch))
        await asyncio.sleep(0.0005 * (i % 10))
        pending.cancel()
        try:
            await pending
        except asyncio.CancelledError:
            cancelled += 1
    assert 0 < cancelled < 40
    tasks = await store.get_all_tasks("run-1")
    events = [e for e in await store.read_events(run_id="run-1") if e.kind == "note"]
    assert len(tasks) % 5 == 0
    assert len(events) == len(tasks)
    assert [e.id for e in await store.read_events()] == list(range(1, 3 + len(events)))
    other = await PostgresStore.open(location)
    try:  # nothing left locked: another connection writes at once
        await asyncio.wait_for(other.append_event("run-1", NewEvent(kind="note")), 3)
    finally:
        await other.close()


# -- events ------------------------------------------------------------------------------------


async def test_event_ids_gap_free_across_runs(store: PostgresStore) -> None:
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


async def test_refused_writes_give_their_event_ids_back(store: PostgresStore) -> None:
    run = await claimed(store)
    with pytest.raises(LeaseLostError):
        await store.commit_step(
            "run-1",
            Step(phase=Phase.EXECUTING, iteration=1, events=(NewEvent(kind="note"),)),
            epoch=run.epoch + 7,
        )
    with pytest.raises(ValidationError):
        await store.commit_step(
            "run-1",
            Step(phase=Phase.EXECUTING, iteration=1, results={"x": "y"}),
            epoch=run.epoch,
        )
    event = await store.append_event("run-1", NewEvent(kind="note"))
    assert event.id == 3


async def test_append_event(store: PostgresStore) -> None:
    created = await store.create_run(new_run("run-1"))
    event = await store.append_event("run-1", NewEvent(kind="note", data={"text": "hi"}))
    assert (event.id, event.run_id, event.kind, event.data) == (2, "run-1", "note", {"text": "hi"})
    assert event.ts > created.created_at
    assert await store.read_events(after_id=1) == [event]


async def test_event_data_is_stored_as_json(store: PostgresStore) -> None:
    run = await claimed(store)
    data = {"pair": (1, 2), "text": "x", "big": 2**62, "tiny": 1e-300}
    appended = await store.append_event("run-1", NewEvent(kind="note", data=data))
    await store.commit_step(
        "run-1",
        Step(phase=Phase.EXECUTING, iteration=1, events=(NewEvent(kind="note", data=data),)),
        epoch=run.epoch,
    )
    as_json = {"pair": [1, 2], "text": "x", "big": 2**62, "tiny": 1e-300}
    assert appended.data == as_json
    assert [e.data for e in (await store.read_events(run_id="run-1"))[-2:]] == [as_json] * 2


async def test_event_data_that_is_not_json_is_refused(store: PostgresStore) -> None:
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


async def test_read_events_limit(store: PostgresStore) -> None:
    await store.create_run(new_run("run-1"))
    for i in range(4):
        await store.append_event("run-1", NewEvent(kind="note", data={"i": i}))
    assert await store.read_events(limit=0) == []
    assert await store.read_events(limit=-1) == []
    assert [e.id for e in await store.read_events(limit=2)] == [1, 2]
    assert [e.id for e in await store.read_events(run_id="run-1", after_id=3)] == [4, 5]


# -- unknown runs, bad input, errors -----------------------------------------------------------

UNKNOWN_RUN_CALLS: dict[str, Callable[[PostgresStore], Awaitable[object]]] = {
    "get_run": lambda s: s.get_run("nope"),
    "get_run_detail": lambda s: s.get_run_detail("nope"),
    "claim_run": lambda s: s.claim_run("nope", OWNER, expected_epoch=0, lease_seconds=1),
    "request_abort": lambda s: s.request_abort("nope"),
    "abort_unowned": lambda s: s.abort_unowned("nope", expected_epoch=0, reason="x"),
    "append_event": lambda s: s.append_event("nope", NewEvent(kind="note")),
}


@pytest.mark.parametrize("call", UNKNOWN_RUN_CALLS.values(), ids=UNKNOWN_RUN_CALLS.keys())
async def test_unknown_run_id(
    store: PostgresStore, call: Callable[[PostgresStore], Awaitable[object]]
) -> None:
    await store.create_run(new_run("other"))
    with pytest.raises(RunNotFoundError, match="nope"):
        await call(store)
    assert len(await store.read_events()) == 1


async def test_unknown_run_reads_are_empty(store: PostgresStore) -> None:
    assert await store.get_all_tasks("nope") == []
    assert await store.get_pending_tasks("nope") == []
    assert await store.get_all_results("nope") == {}


@pytest.mark.parametrize("bad_id", ["", "has space", "a/b", "../x", "x" * 65, "ü"])
async def test_invalid_run_id_refused(store: PostgresStore, bad_id: str) -> None:
    with pytest.raises(ValidationError):
        await store.get_run(bad_id)
    with pytest.raises(ValidationError):
        await store.claim_run(bad_id, OWNER, expected_epoch=0, lease_seconds=1)
    with pytest.raises(ValidationError):
        await store.request_abort(bad_id)


async def test_every_refusal_is_a_nanoagent_error_of_one_line(store: PostgresStore) -> None:
    run = await claimed(store)
    attempts: list[Awaitable[object]] = [
        store.create_run(new_run("run-1")),
        store.get_run("missing"),
        store.get_run("bad id"),
        store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=1),
        store.save_task("run-1", task("t"), epoch=0),
        store.commit_step(
            "run-1", Step(phase=Phase.DONE, iteration=0, results={"q": "r"}), epoch=1
        ),
        store.abort_unowned("run-1", expected_epoch=0, reason="x"),
        store.save_task("run-1", Task(id="t", description="\x00"), epoch=run.epoch),
    ]
    for attempt in attempts:
        with pytest.raises(NanoagentError) as raised:
            await attempt
        message = str(raised.value)
        assert message
        assert "\n" not in message


async def test_read_only_store_reads_but_never_writes(store: PostgresStore, location: str) -> None:
    await claimed(store)
    viewer = await PostgresStore.open(location, read_only=True)
    try:
        assert viewer.read_only
        assert (await viewer.get_run("run-1")).epoch == 1
        with pytest.raises(DatabaseError, match="read-only"):
            await viewer.create_run(new_run("nope"))
        with pytest.raises(DatabaseError, match="read-only"):
            await viewer.request_abort("run-1")
    finally:
        await viewer.close()


def test_location_hides_the_password_and_takes_the_schema() -> None:
    conninfo, schema, shown = split_location(
        "postgresql://me:s3cret@db.example:5433/team?sslmode=require&schema=team_a"
    )
    assert (conninfo, schema) == (
        "postgresql://me:s3cret@db.example:5433/team?sslmode=require",
        "team_a",
    )
    assert shown == "postgresql://me:***@db.example:5433/team?sslmode=require&schema=team_a"
    assert split_location("postgres://h/d")[1] == "nanoagent"
    with pytest.raises(DatabaseError, match="schema"):
        split_location("postgresql://h/d?schema=Robert');DROP")
