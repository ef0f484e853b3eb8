"""The store contract for the conversation journal and the usage ledger, on every store (see
conftest): a step's journal entries commit with it or not at all, and the run's totals move by
exactly what the entries hold, in the same transaction."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from storekit import OWNER, new_run, task

from nanoagent_core.errors import LeaseLostError, ValidationError
from nanoagent_core.models import Attempt, Phase, RunState, TaskStatus
from nanoagent_core.protocols import NewEvent, Step, Store


async def claimed(store: Store, run_id: str = "run-1") -> RunState:
    await store.create_run(new_run(run_id))
    return await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)


def entry(task_id: str, attempt: int = 1, **fields: Any) -> Attempt:
    values: dict[str, Any] = {
        "outcome": "done",
        "messages": json.dumps([{"kind": "request", "parts": [{"content": f"do {task_id}"}]}]),
        "model": "gpt-4o",
        "requests": 1,
        "tokens_in": 100,
        "tokens_out": 10,
        "cost_usd": 0.001,
        "seconds": 0.5,
    }
    values.update(fields)
    return Attempt(task_id=task_id, attempt=attempt, **values)


def totals(run: RunState) -> tuple[int, int, int, float | None, int]:
    return run.requests, run.tokens_in, run.tokens_out, run.cost_usd, run.cost_unknown


async def test_a_new_run_has_an_empty_ledger(store: Store) -> None:
    run = await store.create_run(new_run("fresh"))
    assert totals(run) == (0, 0, 0, None, 0)
    assert totals(await store.get_run("fresh")) == (0, 0, 0, None, 0)
    assert await store.get_attempts("fresh") == []
    assert await store.get_attempts("no-such-run") == []


async def test_journal_entries_round_trip_and_move_the_totals(store: Store) -> None:
    run = await claimed(store)
    t1, t2 = task("t1"), task("t2", status=TaskStatus.DONE)
    first = entry("t1", 1, outcome="failed", cost_usd=0.25, tokens_in=7, tokens_out=3)
    after = await store.commit_step(
        run.run_id,
        Step(phase=Phase.EXECUTING, iteration=1, tasks=(t1, t2), attempts=(first,)),
        epoch=run.epoch,
    )
    assert totals(after) == (1, 7, 3, 0.25, 0)
    later = (entry("t2", 1, messages=None, model=None, requests=0, tokens_in=0, tokens_out=0,
                   cost_usd=None), entry("t1", 2, requests=3, cost_usd=None))  # fmt: skip
    after = await store.commit_step(
        run.run_id, Step(phase=Phase.EXECUTING, iteration=2, attempts=later), epoch=run.epoch
    )
    # the unknown price of t1's second attempt (it made requests) is counted, not guessed;
    # t2's attempt made no request, so nothing about its cost is unknown
    assert totals(after) == (4, 107, 13, 0.25, 1)
    assert totals(await store.get_run(run.run_id)) == totals(after)
    listed = await store.list_runs()
    assert [totals(r) for r in listed] == [totals(after)]
    # by task insertion order, then attempt number
    assert await store.get_attempts(run.run_id) == [first, later[1], later[0]]


async def test_an_entry_for_an_unknown_task_refuses_the_whole_step(store: Store) -> None:
    run = await claimed(store)
    step = Step(
        phase=Phase.EXECUTING,
        iteration=1,
        tasks=(task("t1"),),
        events=(NewEvent(kind="note"),),
        attempts=(entry("t1"), entry("ghost")),
    )
    with pytest.raises(ValidationError, match="ghost"):
        await store.commit_step(run.run_id, step, epoch=run.epoch)
    assert await store.get_attempts(run.run_id) == []
    assert await store.get_all_tasks(run.run_id) == []
    assert totals(await store.get_run(run.run_id)) == (0, 0, 0, None, 0)


async def test_a_journaled_attempt_cannot_be_journaled_again(store: Store) -> None:
    """Each (task, attempt) is journaled once: a second entry for it (a step replayed by
    mistake) refuses the step, so the totals never count an attempt twice."""
    run = await claimed(store)
    once = Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("t1"),), attempts=(entry("t1"),))
    after = await store.commit_step(run.run_id, once, epoch=run.epoch)
    again = Step(phase=Phase.EXECUTING, iteration=2, attempts=(entry("t1", tokens_in=999),))
    with pytest.raises(ValidationError, match="already in the journal"):
        await store.commit_step(run.run_id, again, epoch=run.epoch)
    twice = Step(phase=Phase.EXECUTING, iteration=2, attempts=(entry("t1", 2), entry("t1", 2)))
    with pytest.raises(ValidationError, match="already in the journal"):
        await store.commit_step(run.run_id, twice, epoch=run.epoch)
    now = await store.get_run(run.run_id)
    assert (totals(now), now.iteration) == (totals(after), 1)
    assert await store.get_attempts(run.run_id) == [entry("t1")]


async def test_a_stale_worker_journals_nothing(store: Store) -> None:
    run = await claimed(store)
    await store.commit_step(
        run.run_id, Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("t1"),)), epoch=run.epoch
    )
    await store.request_abort(run.run_id)
    stolen = await store.abort_unowned(run.run_id, expected_epoch=run.epoch, reason="test")
    assert stolen.epoch == run.epoch + 1
    step = Step(phase=Phase.EXECUTING, iteration=2, attempts=(entry("t1"),))
    with pytest.raises(LeaseLostError):
        await store.commit_step(run.run_id, step, epoch=run.epoch)
    assert await store.get_attempts(run.run_id) == []
    assert totals(await store.get_run(run.run_id)) == (0, 0, 0, None, 0)


async def test_totals_kept_by_difference_equal_the_sum_of_the_journal(store: Store) -> None:
    """Over many steps of random entries (and a second run alongside), the run row's totals
    equal the sums over its journal: kept by difference, never recounted."""
    rng = random.Random(11)
    run = await claimed(store)
    other = await claimed(store, "other")
    ids = [f"t{i}" for i in range(6)]
    await store.commit_step(
        run.run_id,
        Step(phase=Phase.EXECUTING, iteration=0, tasks=tuple(task(i) for i in ids)),
        epoch=run.epoch,
    )
    await store.commit_step(
        other.run_id,
        Step(phase=Phase.EXECUTING, iteration=0, tasks=(task("t0"),), attempts=(entry("t0"),)),
        epoch=other.epoch,
    )
    next_attempt = dict.fromkeys(ids, 1)
    for turn in range(25):
        picked = rng.sample(ids, rng.randint(0, 2))
        made: list[Attempt] = []
        for task_id in picked:
            requests = rng.randint(0, 3)
            cost = None if rng.random() < 0.3 else round(rng.random(), 6)
            made.append(entry(task_id, next_attempt[task_id], requests=requests,
                              tokens_in=rng.randint(0, 5000), tokens_out=rng.randint(0, 500),
                              cost_usd=cost))  # fmt: skip
            next_attempt[task_id] += 1
        await store.commit_step(
            run.run_id,
            Step(phase=Phase.EXECUTING, iteration=turn + 1, attempts=tuple(made)),
            epoch=run.epoch,
        )
    journal = await store.get_attempts(run.run_id)
    assert len(journal) == sum(n - 1 for n in next_attempt.values())
    known = [a.cost_usd for a in journal if a.cost_usd is not None]
    now = await store.get_run(run.run_id)
    assert totals(now)[:3] == (
        sum(a.requests for a in journal),
        sum(a.tokens_in for a in journal),
        sum(a.tokens_out for a in journal),
    )
    assert now.cost_unknown == sum(a.cost_usd is None and a.requests > 0 for a in journal)
    assert now.cost_usd == pytest.approx(sum(known) if known else None)
    assert totals(await store.get_run("other")) == (1, 100, 10, 0.001, 0)
