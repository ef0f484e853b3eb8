"""A planner or reflector call that fails the run is journaled with the failing step (outcome
``failed``, its conversation up to the error, its usage counted), in-process on the memory
store with a make_agent agent whose planner or reflector answers through a FunctionModel
that never gives a valid output. Resuming the failed run asks again: the next call number.
And a replay of a run whose plan was cut by its budget answers from the plan that was used.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from nanoagent_core.agents import registry
from nanoagent_core.agents.base import Agent
from nanoagent_core.agents.pydantic_ai import make_agent
from nanoagent_core.budget import Budget
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.replay import replay_run
from nanoagent_core.worker import resume_run

GOAL = "Plan a trip"


def nonsense(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    del messages, info
    return ModelResponse(parts=[TextPart("I would rather not say.")])


def broken(role: str) -> registry.AgentFactory:
    """The llm agent's roles on TestModel, but ``role`` answers nonsense (never an output)."""

    def factory(options: Mapping[str, str]) -> Agent:
        given = {r: PydanticAgent() for r in ("planner", "executor", "reflector")}
        given[role] = PydanticAgent(FunctionModel(nonsense, model_name="nonsense"))
        models = {f"{r}_model": "test" for r in given if r != role}
        return make_agent(
            planner=given["planner"],
            executor=given["executor"],
            reflector=given["reflector"],
            options={**models, **options},
            name="broken",
        )

    return factory


async def run_broken(monkeypatch: pytest.MonkeyPatch, role: str) -> tuple[MemoryStore, RunState]:
    monkeypatch.setitem(registry._BUILTIN, "broken", broken(role))  # pyright: ignore[reportPrivateUsage]
    store = MemoryStore()
    await store.create_run(RunState(run_id="r1", goal=GOAL, max_iterations=20, agent="broken"))
    return store, await resume_run(store, "r1", handle_signals=False)


async def test_a_failing_plan_is_journaled_with_the_step_that_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, final = await run_broken(monkeypatch, "planner")
    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert final.error.startswith("planner failed: CallFailedError")
    [plan] = await store.get_calls("r1")
    assert (plan.role, plan.iteration, plan.call, plan.outcome) == ("planner", 0, 1, "failed")
    assert plan.model == "nonsense"
    assert plan.requests >= 2
    assert "I would rather not say." in (plan.messages or "")
    assert (final.requests, final.tokens_in, final.tokens_out) == (
        plan.requests,
        plan.tokens_in,
        plan.tokens_out,
    )
    # resuming the failed run asks the planner again: its next call at the same iteration
    again = await resume_run(store, "r1", handle_signals=False)
    assert again.status is RunStatus.FAILED
    calls = await store.get_calls("r1")
    assert [(c.call, c.outcome) for c in calls] == [(1, "failed"), (2, "failed")]
    assert again.requests == 2 * plan.requests


async def test_a_failing_reflection_is_journaled_with_the_step_that_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, final = await run_broken(monkeypatch, "reflector")
    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert final.error.startswith("reflector failed:")
    calls = await store.get_calls("r1")
    assert [(c.role, c.outcome) for c in calls] == [("planner", "done"), ("reflector", "failed")]
    assert calls[1].iteration == final.iteration
    journal = [*await store.get_attempts("r1"), *calls]
    assert final.requests == sum(e.requests for e in journal)
    assert final.tokens_in == sum(e.tokens_in for e in journal)


async def test_a_replay_of_a_run_whose_plan_was_cut_answers_from_the_plan_it_used() -> None:
    store = MemoryStore()
    await store.create_run(
        RunState(run_id="cut", goal=GOAL, max_iterations=20, agent="llm",
                 agent_options={"model": "test"}, max_tokens=5)
    )  # fmt: skip
    paused = await resume_run(store, "cut", handle_signals=False)
    assert (paused.status, paused.phase.value) == (RunStatus.PAUSED, "planning")
    done = await resume_run(store, "cut", handle_signals=False, budget=Budget(max_tokens=50000))
    assert done.status is RunStatus.COMPLETED
    calls = await store.get_calls("cut")
    assert [(c.role, c.call, c.outcome) for c in calls[:2]] == [
        ("planner", 1, "budget"),
        ("planner", 2, "done"),
    ]
    report = await replay_run(store, "cut", "again", handle_signals=False)
    assert report.equal, report.differences
    replayed = await store.get_calls("again")
    assert [(c.role, c.outcome) for c in replayed] == [(c.role, c.outcome) for c in calls[1:]]
