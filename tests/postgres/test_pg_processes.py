"""Several real processes on one schema: gap-free events under concurrent writers, and claim
races with exactly one winner."""

from __future__ import annotations

from collections import Counter
from multiprocessing.context import ForkServerContext
from typing import Any

import pytest
from pgkit import new_run
from prockit import claim_worker, commit_worker, reader_worker

from nanoagent_core.postgres import PostgresStore

WRITERS = 8
STEPS = 200
RACERS = 8
RACES = 5


def _collect(out: Any, count: int) -> list[tuple[str, str, Any]]:
    return [out.get(timeout=120) for _ in range(count)]


def _join(procs: list[Any]) -> None:
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()


async def test_concurrent_writers_and_a_follower_see_every_event_once_in_order(
    location: str, store: PostgresStore, forking: ForkServerContext
) -> None:
    """8 processes x 200 steps (each its own transaction), while a reader process follows
    the log with ``after_id``: it sees every id exactly once, in order, no gap ever; every
    run it lists is consistent (no half-committed step); every row is there at the end."""
    ctx = forking
    barrier = ctx.Barrier(WRITERS + 1)
    stop = ctx.Event()
    saw = ctx.Event()  # writers pause halfway until the reader has seen events
    out = ctx.Queue()
    await store.count_runs()  # the schema exists before the reader opens it read-only
    writers = [
        ctx.Process(target=commit_worker, args=(location, f"w{i}", STEPS, barrier, out, saw))
        for i in range(WRITERS)
    ]
    reader = ctx.Process(target=reader_worker, args=(location, barrier, stop, out, saw))
    for proc in [*writers, reader]:
        proc.start()
    try:
        finished = _collect(out, WRITERS)
        stop.set()
        (read,) = _collect(out, 1)
    finally:
        stop.set()
        _join([*writers, reader])
    assert [detail for kind, _, detail in finished if kind != "ok"] == []
    assert read[0] == "ok", read[2]
    report = read[2]
    total = WRITERS * (2 + STEPS)  # run_created + run_claimed + one per step
    assert report["problems"] == []
    assert (report["seen"], report["last_id"]) == (total, total)
    assert report["reads_while_writing"] > 0  # surely: the writers waited for one halfway
    events = await store.read_events(limit=total + 10)
    assert [e.id for e in events] == list(range(1, total + 1))
    per_run = Counter(e.run_id for e in events)
    assert per_run == {f"w{i}": 2 + STEPS for i in range(WRITERS)}
    for i in range(WRITERS):
        run = await store.get_run(f"w{i}")
        assert (run.iteration, run.tasks_total, run.tasks_done) == (STEPS, STEPS, STEPS)
        assert len(await store.get_all_results(f"w{i}")) == STEPS


@pytest.mark.parametrize("owner_gone", [False, True], ids=["epoch-and-lease", "epoch-only"])
async def test_claim_race_between_processes_has_exactly_one_winner(
    location: str, store: PostgresStore, owner_gone: bool, forking: ForkServerContext
) -> None:
    """With ``owner_gone`` (and one host name) the lease check lets every racer through: only
    the claim's compare-and-set on the epoch stops the losers."""
    run_ids = [f"race-{i}" for i in range(RACES)]
    for run_id in run_ids:
        await store.create_run(new_run(run_id))
    ctx = forking
    barrier = ctx.Barrier(RACERS)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=claim_worker, args=(location, run_ids, barrier, out, owner_gone))
        for _ in range(RACERS)
    ]
    for proc in procs:
        proc.start()
    try:
        results = _collect(out, RACERS)
    finally:
        _join(procs)
    assert [detail for kind, _, detail in results if kind != "ok"] == []
    outcomes = [outcome for _, _, per_process in results for outcome in per_process]
    for run_id in run_ids:
        mine = [kind for kind, rid, _ in outcomes if rid == run_id]
        assert sorted(mine) == ["busy"] * (RACERS - 1) + ["won"], run_id
        run = await store.get_run(run_id)
        assert run.epoch == 1
        kinds = [e.kind for e in await store.read_events(run_id=run_id)]
        assert kinds == ["run_created", "run_claimed"]
