"""The store contract for the planner's and reflector's journal (``Step.calls``), on every
store (see conftest): a call's entry commits with its step or not at all, is numbered by the
store per role and iteration (so a call asked again, after a pause, is a new entry and none
is ever written twice), moves the run's totals with the attempts in the same transaction,
reads back by iteration, role and number, and goes when its run is pruned."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from storekit import OWNER, new_run, task

from nanoagent_core.errors import LeaseLostError
from nanoagent_core.models import Attempt, ModelCall, PauseReason, Phase, RunState, RunStatus
from nanoagent_core.pause import pause_step
from nanoagent_core.protocols import Step, Store


async def claimed(store: Store, run_id: str = "run-1") -> RunState:
    await store.create_run(new_run(run_id))
    return await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)


def call(role: str, iteration: int, **fields: Any) -> ModelCall:
    values: dict[str, Any] = {
        "outcome": "done",
        "messages": json.dumps(
            [{"kind": "request", "parts": [{"content": f"{role} {iteration}"}]}]
        ),
        "model": "gpt-4o",
        "requests": 1,
        "tokens_in": 100,
        "tokens_out": 10,
        "cost_usd": 0.001,
        "seconds": 0.5,
    }
    values.update(fields)
    return ModelCall(role=role, iteration=iteration, **values)  # pyright: ignore[reportArgumentType]


def totals(run: RunState) -> tuple[int, int, int, float | None, int]:
    return run.requests, run.tokens_in, run.tokens_out, run.cost_usd, run.cost_unknown


def numbered(c: ModelCall, number: int) -> ModelCall:
    return c.model_copy(update={"call": number})


async def test_calls_round_trip_numbered_and_move_the_totals_with_the_attempts(
    store: Store,
) -> None:
    run = await claimed(store)
    assert await store.get_calls(run.run_id) == []
    assert await store.get_calls("no-such-run") == []
    cut = call("planner", 0, outcome="budget", tokens_in=40, tokens_out=0, cost_usd=0.5)
    paused = await store.commit_step(
        run.run_id,
        pause_step(
            PauseReason.BUDGET,
            "40 of 30 tokens spent",
            phase=Phase.PLANNING,
            iteration=0,
            current_task_id=None,
            calls=(cut,),
        ),
        epoch=run.epoch,
    )
    assert paused.status is RunStatus.PAUSED
    assert totals(paused) == (1, 40, 0, 0.5, 0)
    again = await store.claim_run(run.run_id, OWNER, expected_epoch=run.epoch, lease_seconds=30)
    plan = call("planner", 0, requests=2, cost_usd=None)  # asked again: its number is 2
    t1 = task("t1")
    after = await store.commit_step(
        run.run_id,
        Step(phase=Phase.EXECUTING, iteration=1, current_task_id="t1", tasks=(t1,), calls=(plan,)),
        epoch=again.epoch,
    )
    # an unknown price that made requests is counted, never guessed
    assert totals(after) == (3, 140, 10, 0.5, 1)
    attempt = Attempt(
        task_id="t1", attempt=1, outcome="done", requests=1, tokens_in=5, cost_usd=0.0
    )
    reflection = call("reflector", 1, tokens_in=1, tokens_out=1, cost_usd=0.25)
    after = await store.commit_step(
        run.run_id,
        Step(
            phase=Phase.DONE,
            iteration=1,
            attempts=(attempt,),
            calls=(reflection,),
            status=RunStatus.COMPLETED,
            result="ok",
        ),
        epoch=again.epoch,
    )
    assert totals(after) == (5, 146, 11, 0.75, 1)
    assert totals(await store.get_run(run.run_id)) == totals(after)
    assert await store.get_calls(run.run_id) == [
        numbered(cut, 1),
        numbered(plan, 2),
        numbered(reflection, 1),
    ]
    assert await store.get_attempts(run.run_id) == [attempt]


async def test_a_fenced_out_step_journals_no_call(store: Store) -> None:
    run = await claimed(store)
    taken = await store.claim_run(
        run.run_id, OWNER, expected_epoch=run.epoch, lease_seconds=30, owner_gone=True
    )
    stale = Step(phase=Phase.EXECUTING, iteration=1, calls=(call("planner", 0),))
    with pytest.raises(LeaseLostError):
        await store.commit_step(run.run_id, stale, epoch=run.epoch)
    assert await store.get_calls(run.run_id) == []
    assert totals(await store.get_run(run.run_id)) == (0, 0, 0, None, 0)
    fresh = await store.commit_step(run.run_id, stale, epoch=taken.epoch)
    assert totals(fresh) == (1, 100, 10, 0.001, 0)
    assert [c.call for c in await store.get_calls(run.run_id)] == [1]


async def test_two_calls_of_one_step_are_numbered_in_order(store: Store) -> None:
    run = await claimed(store)
    first, second = call("reflector", 3, outcome="failed"), call("reflector", 3, tokens_in=1)
    await store.commit_step(
        run.run_id,
        Step(phase=Phase.REFLECTING, iteration=3, calls=(first, second)),
        epoch=run.epoch,
    )
    assert await store.get_calls(run.run_id) == [numbered(first, 1), numbered(second, 2)]


async def test_a_pruned_run_takes_its_calls_along(store: Store, clock: Any) -> None:
    run = await claimed(store, "old")
    await store.commit_step(
        run.run_id,
        Step(
            phase=Phase.DONE,
            iteration=0,
            calls=(call("planner", 0, outcome="failed"),),
            status=RunStatus.FAILED,
            error="planner failed",
        ),
        epoch=run.epoch,
    )
    clock.advance(2 * 86400)
    await store.create_run(new_run("newest"))  # the run holding the newest event stays
    pruned = await store.delete_finished_runs(
        statuses=[RunStatus.FAILED], older_than=timedelta(days=1)
    )
    assert pruned.runs == 1
    assert await store.get_calls("old") == []
    # a new run of the same id starts with an empty journal
    again = await claimed(store, "old")
    assert await store.get_calls(again.run_id) == []
