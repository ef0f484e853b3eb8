"""Retention contract (memory, SQLite, PostgreSQL): ``delete_finished_runs`` removes only old
finished runs of the statuses named, with their tasks, results and events, in batches of at
most ``limit``; everything else stays exactly as it was; ``keep_last`` and counting hold.

Event ids: pruning leaves holes where a pruned run's events were. Followers read by id after
their cursor, so holes below it change nothing; the ids of the runs that stay do not move,
and new events still get ids above every id handed out before (the run holding the newest
event is never pruned: SQLite would hand its ids out again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from storekit import OWNER, FakeClock, new_run, task

from nanoagent_core.errors import RunNotFoundError, ValidationError
from nanoagent_core.models import Event, Phase, RunState, RunStatus, Task
from nanoagent_core.protocols import NewEvent, PruneCount, Step, Store

FINISHED = (RunStatus.COMPLETED, RunStatus.ABORTED, RunStatus.FAILED)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Kept:
    run: RunState
    tasks: list[Task]
    results: dict[str, str]
    events: list[Event]


async def kept(store: Store, run_id: str) -> Kept:
    return Kept(
        await store.get_run(run_id),
        await store.get_all_tasks(run_id),
        await store.get_all_results(run_id),
        await store.read_events(run_id=run_id, limit=100_000),
    )


async def gone(store: Store, run_id: str) -> bool:
    try:
        await store.get_run(run_id)
    except RunNotFoundError:
        pass
    else:
        return False
    owned = (
        await store.get_all_tasks(run_id),
        await store.get_all_results(run_id),
        await store.read_events(run_id=run_id, limit=10),
    )
    assert owned == ([], {}, []), f"{run_id}: rows left behind"
    return True


async def worked(store: Store, run_id: str, end: RunStatus | None) -> RunState:
    """A run with two tasks, a result and events; ended with ``end`` (None: left running)."""
    await store.create_run(new_run(run_id))
    run = await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)
    step = Step(
        phase=Phase.EXECUTING,
        iteration=1,
        tasks=(task("a"), task("b")),
        results={"a": f"result of {run_id}"},
        events=(NewEvent(kind="note", data={"run": run_id}),),
    )
    run = await store.commit_step(run_id, step, epoch=run.epoch)
    if end is None:
        return run
    if end is RunStatus.ABORTED:
        await store.request_abort(run_id)
    done = Step(phase=Phase.DONE, iteration=2, status=end, error=None)
    return await store.commit_step(run_id, done, epoch=run.epoch)


async def prune_all(store: Store, limit: int, **kwargs: object) -> tuple[PruneCount, list[int]]:
    """Batches until nothing is left; the total and each batch's size."""
    total = PruneCount()
    sizes: list[int] = []
    for _ in range(1000):
        batch = await store.delete_finished_runs(limit=limit, **kwargs)  # type: ignore[arg-type]
        if batch.candidates == 0:
            return total, sizes
        total += batch
        sizes.append(batch.runs)
    raise AssertionError("prune never ended")


async def test_prune_removes_old_finished_runs_only(store: Store, clock: FakeClock) -> None:
    old = {f"old-{s.value}-{i}": s for s in FINISHED for i in range(3)}
    for run_id, status in old.items():
        await worked(store, run_id, status)
    # Old but not finished: a live running run, a crashed one (lease long expired), an
    # interrupted one.
    await worked(store, "old-live", None)
    await worked(store, "old-crashed", None)
    interrupted = await worked(store, "old-interrupted", None)
    step = Step(phase=Phase.EXECUTING, iteration=1, status=RunStatus.INTERRUPTED)
    await store.commit_step("old-interrupted", step, epoch=interrupted.epoch)
    clock.advance(2 * 3600)
    live = await store.get_run("old-live")
    await store.renew_lease("old-live", epoch=live.epoch, lease_seconds=30)
    for status in FINISHED:
        await worked(store, f"new-{status.value}", status)
    await worked(store, "newest-running", None)  # holds the newest event

    stays = [r.run_id for r in await store.list_runs(limit=1000) if r.run_id not in old]
    before = {run_id: await kept(store, run_id) for run_id in stays}
    last_id = (await store.read_events(limit=100_000))[-1].id
    statuses = [RunStatus.COMPLETED, RunStatus.ABORTED, RunStatus.FAILED]

    counted = await store.count_finished_runs(statuses=statuses, older_than=HOUR)
    # counting changed nothing
    assert {run_id: await kept(store, run_id) for run_id in stays} == before
    assert counted.runs == len(old)

    total, sizes = await prune_all(store, 4, statuses=statuses, older_than=HOUR)
    assert sizes
    assert max(sizes) <= 4
    assert (total.runs, total.tasks, total.events) == (counted.runs, counted.tasks, counted.events)
    assert total.tasks == 2 * len(old)
    for run_id in old:
        assert await gone(store, run_id)
    after = {run_id: await kept(store, run_id) for run_id in stays}
    assert after == before
    counts = await store.count_runs()
    assert sum(counts.values()) == len(stays)

    # Survivors' events keep their ids, in order; a new event goes above every old id.
    ids = [e.id for e in await store.read_events(limit=100_000)]
    assert ids == sorted(ids)
    assert ids == sorted(e.id for k in after.values() for e in k.events)
    note = await store.append_event("new-completed", NewEvent(kind="note"))
    assert note.id == last_id + 1


async def test_prune_names_statuses_and_ages(store: Store, clock: FakeClock) -> None:
    for status in FINISHED:
        await worked(store, f"run-{status.value}", status)
    clock.advance(600)
    await worked(store, "newest", None)
    aborted = await store.delete_finished_runs(
        statuses=[RunStatus.ABORTED], older_than=timedelta(minutes=5)
    )
    assert (aborted.runs, aborted.tasks) == (1, 2)
    assert await gone(store, "run-aborted")
    young = await store.delete_finished_runs(statuses=FINISHED, older_than=HOUR)
    assert young == PruneCount()
    await store.get_run("run-completed")
    await store.get_run("run-failed")


async def test_keep_last_keeps_the_newest_finished(store: Store, clock: FakeClock) -> None:
    for i in range(7):
        await worked(store, f"run-{i}", RunStatus.COMPLETED)
        clock.advance(60)
    await worked(store, "newest", None)
    clock.advance(3600)
    counted = await store.count_finished_runs(
        statuses=[RunStatus.COMPLETED], older_than=timedelta(0), keep_last=3
    )
    assert counted.runs == 4
    total, sizes = await prune_all(
        store, 2, statuses=[RunStatus.COMPLETED], older_than=timedelta(0), keep_last=3
    )
    assert total.runs == 4
    assert max(sizes) <= 2
    left = sorted(r.run_id for r in await store.list_runs(statuses=[RunStatus.COMPLETED]))
    assert left == ["run-4", "run-5", "run-6"]
    more = await store.delete_finished_runs(
        statuses=[RunStatus.COMPLETED], older_than=timedelta(0), keep_last=10
    )
    assert more == PruneCount()


async def test_run_holding_newest_event_stays(store: Store, clock: FakeClock) -> None:
    """Prune everything: the run with the newest event stays, so ids are never reused."""
    for i in range(3):
        await worked(store, f"run-{i}", RunStatus.COMPLETED)
    last_id = (await store.read_events(limit=1000))[-1].id
    clock.advance(10)
    total, _ = await prune_all(store, 500, statuses=FINISHED, older_than=timedelta(0))
    assert total.runs == 2
    assert [r.run_id for r in await store.list_runs()] == ["run-2"]
    await store.create_run(new_run("later"))
    assert (await store.read_events(run_id="later"))[0].id == last_id + 1


async def test_a_run_resumed_meanwhile_is_not_deleted(store: Store, clock: FakeClock) -> None:
    """Counted as prunable, then claimed again before the delete: it stays."""
    done = await worked(store, "resumed", RunStatus.FAILED)
    await worked(store, "other", RunStatus.FAILED)
    await worked(store, "newest", None)
    clock.advance(7200)
    assert (await store.count_finished_runs(statuses=FINISHED, older_than=HOUR)).runs == 2
    await store.claim_run("resumed", OWNER, expected_epoch=done.epoch, lease_seconds=30)
    total, _ = await prune_all(store, 500, statuses=FINISHED, older_than=HOUR)
    assert total.runs == 1
    assert (await store.get_run("resumed")).status is RunStatus.RUNNING
    assert len(await store.get_all_tasks("resumed")) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"statuses": [RunStatus.RUNNING]}, "finished runs only"),
        ({"statuses": [RunStatus.INTERRUPTED]}, "finished runs only"),
        ({"statuses": []}, "at least one status"),
        ({"keep_last": -1}, "keep_last"),
        ({"limit": 0}, "at least one run"),
        ({"older_than": timedelta(seconds=-1)}, "negative"),
    ],
)
async def test_prune_refuses_bad_arguments(
    store: Store, kwargs: dict[str, object], match: str
) -> None:
    await worked(store, "run-1", RunStatus.COMPLETED)
    args: dict[str, object] = {"statuses": FINISHED, "older_than": timedelta(0), **kwargs}
    with pytest.raises(ValidationError, match=match):
        await store.delete_finished_runs(**args)  # type: ignore[arg-type]
    await store.get_run("run-1")
