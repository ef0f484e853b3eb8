"""The README's pydantic-ai example, exactly as written there, runs offline on model=test: a
run planned, executed and reflected by the user's Agent completes, and its tool is called."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import ModelMessagesTypeAdapter, ToolCallPart, ToolReturnPart

from nanoagent_core.agents.base import Agent
from nanoagent_core.errors import ValidationError
from nanoagent_core.loop import Loop
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import RunState, RunStatus, TaskStatus
from nanoagent_core.procinfo import current_owner

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- example: pydantic-ai agent"


def readme_example() -> types.ModuleType:
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match is not None
    module = types.ModuleType("my_package.agent")
    exec(compile(match.group(1), str(README), "exec"), module.__dict__)
    return module


def factory() -> Any:
    return readme_example().make_trip_agent


async def drive(agent: Agent, goal: str) -> MemoryStore:
    store = MemoryStore()
    await store.create_run(RunState(run_id="r1", goal=goal, max_iterations=20, agent="trip"))
    claimed = await store.claim_run("r1", current_owner(), expected_epoch=0, lease_seconds=60)
    final = await Loop(store, claimed, agent).run()
    assert final.status is RunStatus.COMPLETED, final.error
    return store


async def test_the_readme_example_runs_offline_and_calls_its_tool():
    agent = factory()({"model": "test"})
    assert isinstance(agent, Agent)
    assert agent.name == "trip"
    store = await drive(agent, "Plan a trip to Lisbon")
    tasks = await store.get_all_tasks("r1")
    assert len(tasks) == 4
    assert all(t.status is TaskStatus.DONE for t in tasks)

    outcome = await agent.executor.execute(tasks[0], {}, "r1:x:1")
    assert outcome.success
    assert outcome.transcript is not None
    messages = ModelMessagesTypeAdapter.validate_json(outcome.transcript.messages_json)
    parts = [part for message in messages for part in message.parts]
    calls = [p for p in parts if isinstance(p, ToolCallPart) and p.tool_name == "train_fare"]
    returns = [p for p in parts if isinstance(p, ToolReturnPart) and p.tool_name == "train_fare"]
    assert len(calls) == 1
    assert len(returns) == 1
    assert "42 EUR" in str(returns[0].content)
    usage = outcome.transcript.usage
    assert usage.requests == 2  # the tool call, then the output
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert usage.model == "test"


def test_the_readme_agent_without_a_model_option_needs_its_own_model_usable():
    # offline, its own model (openai:gpt-4.1) cannot be built here: the openai SDK is not
    # installed, or no key is in the environment; refused in one line before anything runs
    with pytest.raises(ValidationError, match=r"^agent 'trip': model 'openai:gpt-4\.1'") as err:
        factory()({})
    assert "\n" not in str(err.value)


def test_the_readme_agent_refuses_unknown_options():
    with pytest.raises(ValidationError, match="unknown option 'region'"):
        factory()({"model": "test", "region": "eu"})
