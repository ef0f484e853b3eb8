"""What only PostgreSQL needs checked, on a real server with the database's own clock: the
shared contract suite (tests/store, which runs on PostgreSQL too) covers the rest.

Leases are real and short (tenths of a second); nothing here injects a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from pgkit import new_run, sql_rows
from storekit import snapshot

from nanoagent_core.errors import (
    DatabaseError,
    LeaseLostError,
    RunBusyError,
    RunNotFoundError,
    ValidationError,
)
from nanoagent_core.models import (
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
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


def db_now(pg_url: str) -> datetime:
    value = sql_rows(pg_url, "SELECT now()")[0][0]
    assert isinstance(value, datetime)
    return value


async def expire(run: RunState) -> None:
    """Sleep until ``run``'s lease is over (by the database's clock, which is this host's)."""
    assert run.lease_expires_at is not None
    await asyncio.sleep((run.lease_expires_at - datetime.now(UTC)).total_seconds() + 0.05)


# -- round trip --------------------------------------------------------------------------------


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


async def test_renew_lease_extends_lease_by_the_database_clock(
    store: PostgresStore, pg_url: str
) -> None:
    run = await claimed(store, lease=0.3)
    await expire(run)  # the first lease is over...
    before = db_now(pg_url)
    renewed = await store.renew_lease("run-1", epoch=run.epoch, lease_seconds=600)
    assert renewed.heartbeat_at is not None
    assert renewed.heartbeat_at >= before
    assert renewed.lease_expires_at == renewed.heartbeat_at + timedelta(seconds=600)
    with pytest.raises(RunBusyError):  # ...but the renewed one holds
        await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    short = await store.renew_lease("run-1", epoch=run.epoch, lease_seconds=0.3)
    await expire(short)
    again = await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
    assert again.epoch == run.epoch + 1


async def test_renew_lease_after_the_run_ended(store: PostgresStore) -> None:
    run = await claimed(store)
    await store.commit_step("run-1", finishing(RunStatus.INTERRUPTED), epoch=run.epoch)
    with pytest.raises(LeaseLostError):
        await store.renew_lease("run-1", epoch=run.epoch, lease_seconds=30)
    assert (await store.get_run("run-1")).lease_expires_at is None


# -- claims ------------------------------------------------------------------------------------


async def test_claim_of_live_leased_run_is_busy(store: PostgresStore) -> None:
    run = await claimed(store)
    before = await snapshot(store, "run-1")
    with pytest.raises(RunBusyError, match="live worker"):
        await store.claim_run("run-1", OTHER_OWNER, expected_epoch=run.epoch, lease_seconds=30)
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


# -- atomicity ---------------------------------------------------------------------------------


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


async def test_cancelled_commit_is_all_or_nothing(store: PostgresStore, location: str) -> None:
    """Cancelling a caller mid-commit leaves each step whole or absent, and no lock held.
    (How many commits the cancel cut depends on the machine's load; each step's fate does
    not.)"""
    run = await claimed(store)
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
        with contextlib.suppress(asyncio.CancelledError):
            await pending
    tasks = await store.get_all_tasks("run-1")
    events = [e for e in await store.read_events(run_id="run-1") if e.kind == "note"]
    task_steps = Counter(int(t.id.split("-")[0][1:]) for t in tasks)
    event_steps = Counter(int(e.data["i"]) for e in events)
    # every step is all there (5 tasks and its 5 events) or not at all
    assert set(task_steps.values()) <= {5}, task_steps
    assert event_steps == task_steps
    run_after = await store.get_run("run-1")
    assert run_after.tasks_total == len(tasks)
    assert [e.id for e in await store.read_events()] == list(range(1, 3 + len(events)))
    other = await PostgresStore.open(location)
    try:  # nothing left locked: another connection writes at once
        await asyncio.wait_for(other.append_event("run-1", NewEvent(kind="note")), 30)
    finally:
        await other.close()


# -- events ------------------------------------------------------------------------------------


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


# -- unknown runs, bad input, errors -----------------------------------------------------------

UNKNOWN_RUN_CALLS: dict[str, Callable[[PostgresStore], Awaitable[object]]] = {
    "get_run": lambda s: s.get_run("nope"),
    "get_run_detail": lambda s: s.get_run_detail("nope"),
    "claim_run": lambda s: s.claim_run("nope", OWNER, expected_epoch=0, lease_seconds=1),
    "request_abort": lambda s: s.request_abort("nope"),
    "abort_unowned": lambda s: s.abort_unowned("nope", expected_epoch=0, reason="x"),
    "append_event": lambda s: s.append_event("nope", NewEvent(kind="note")),
}


@pytest.mark.parametrize("call", sorted(UNKNOWN_RUN_CALLS))
async def test_calls_on_an_unknown_run_say_so(store: PostgresStore, call: str) -> None:
    with pytest.raises(RunNotFoundError, match="nope"):
        await UNKNOWN_RUN_CALLS[call](store)


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
