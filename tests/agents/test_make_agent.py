"""make_agent over pydantic-ai Agents driven by FunctionModel (offline): each call gets its
typed output, the options reach the model (instructions, temperature, request limit, per-role
models), and every call hands back its transcript, a failed one included."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    ToolCallPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from nanoagent_core.agents.base import Agent
from nanoagent_core.agents.pydantic_ai import (
    ExecutionOutput,
    ModelOptions,
    PlannedTasks,
    PlanOutput,
    ReflectionOutput,
    make_agent,
)
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import Task

TASK = Task(id="t1", description="Book the train")


def answering(args: dict[str, Any], seen: list[AgentInfo] | None = None) -> FunctionModel:
    """A model that answers every call through its output tool with ``args``."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if seen is not None:
            seen.append(info)
        (tool,) = info.output_tools
        return ModelResponse(parts=[ToolCallPart(tool.name, args)])

    return FunctionModel(respond, model_name="scripted")


def agent_on(scripted: FunctionModel, **options: str) -> Agent:
    pai = PydanticAgent(scripted)
    return make_agent(planner=pai, executor=pai, reflector=pai, options=options)


async def test_each_role_gets_its_typed_output_and_a_transcript():
    seen: list[AgentInfo] = []
    planner = PydanticAgent(answering({"tasks": ["a", "b"]}, seen))
    executor = PydanticAgent(answering({"result": "booked", "success": True}, seen))
    reflector = PydanticAgent(
        answering({"done": False, "gaps": ["g"], "new_tasks": ["c"], "cancel_ids": ["x"]}, seen)
    )
    agent = make_agent(planner=planner, executor=executor, reflector=reflector)
    planned = await agent.planner.plan("goal")
    assert list(planned) == ["a", "b"]
    assert isinstance(planned, PlannedTasks)
    assert planned.transcript is not None
    outcome = await agent.executor.execute(TASK, {"t0": "earlier"}, "r:t1:1")
    assert (outcome.success, outcome.output) == (True, "booked")
    reflection = await agent.reflector.reflect("goal", [], [TASK])
    assert (reflection.done, list(reflection.gaps)) == (False, ["g"])
    assert (list(reflection.new_tasks), list(reflection.cancel_ids)) == (["c"], ["x"])
    schemas = [info.output_tools[0].parameters_json_schema["properties"] for info in seen]
    assert [sorted(s) for s in schemas] == [
        sorted(PlanOutput.model_fields),
        sorted(ExecutionOutput.model_fields),
        sorted(ReflectionOutput.model_fields),
    ]
    for transcript in (planned.transcript, outcome.transcript, reflection.transcript):
        assert transcript is not None
        messages = ModelMessagesTypeAdapter.validate_json(transcript.messages_json)
        assert len(messages) == 3  # the prompt, the output tool call, its return
        assert transcript.usage.requests == 1
        assert transcript.usage.model == "scripted"


async def test_options_reach_the_model():
    seen: list[AgentInfo] = []
    agent = agent_on(
        answering({"result": "ok", "success": True}, seen),
        instructions="Answer in French.",
        temperature="0.25",
    )
    await agent.executor.execute(TASK, {}, "r:t1:1")
    (info,) = seen
    assert info.instructions is not None
    assert "Answer in French." in info.instructions
    assert info.model_settings is not None
    assert info.model_settings.get("temperature") == 0.25


async def test_a_body_that_reaches_its_request_limit_is_a_failed_attempt_with_its_transcript():
    calls: list[int] = []

    def never_done(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(1)
        return ModelResponse(parts=[ToolCallPart("look", {})])  # never the output tool

    def look() -> str:
        """Look around once more."""
        return "nothing new"

    pai = PydanticAgent(FunctionModel(never_done), tools=[look])
    agent = make_agent(planner=pai, executor=pai, reflector=pai, options={"requests_per_task": "2"})
    outcome = await agent.executor.execute(TASK, {}, "r:t1:1")
    assert not outcome.success
    assert "UsageLimitExceeded" in outcome.output
    assert outcome.transcript is not None
    assert outcome.transcript.usage.requests == len(calls) == 2
    messages = ModelMessagesTypeAdapter.validate_json(outcome.transcript.messages_json)
    assert sum(isinstance(m, ModelResponse) for m in messages) == 2


async def test_a_model_error_is_a_failed_attempt_with_the_messages_so_far():
    def broken(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ConnectionError("provider unreachable")

    agent = agent_on(FunctionModel(broken))
    outcome = await agent.executor.execute(TASK, {}, "r:t1:1")
    assert not outcome.success
    assert outcome.output == "ConnectionError: provider unreachable"
    assert outcome.transcript is not None
    messages = ModelMessagesTypeAdapter.validate_json(outcome.transcript.messages_json)
    assert len(messages) == 1  # the request that was never answered
    assert outcome.transcript.usage.requests == 0


async def test_a_task_the_model_says_it_could_not_do_fails():
    agent = agent_on(answering({"result": "no trains on Sunday", "success": False}))
    outcome = await agent.executor.execute(TASK, {}, "r:t1:1")
    assert (outcome.success, outcome.output) == (False, "no trains on Sunday")


async def test_model_test_overrides_the_agents_own_model_per_role():
    scripted = answering({"tasks": ["from the scripted model"]})
    pai = PydanticAgent(scripted)
    agent = make_agent(planner=pai, executor=pai, reflector=pai, options={"executor_model": "test"})
    assert list(await agent.planner.plan("goal")) == ["from the scripted model"]
    outcome = await agent.executor.execute(TASK, {}, "r:t1:1")
    assert outcome.transcript is not None
    assert outcome.transcript.usage.model == "test"


def test_parsing_the_common_options():
    parsed = ModelOptions.parse(
        {"model": "test", "planner_model": "openai:gpt-4.1", "requests_per_task": "3"}, who="x"
    )
    assert dict(parsed.models) == {
        "planner": "openai:gpt-4.1",
        "executor": "test",
        "reflector": "test",
    }
    assert parsed.requests_per_task == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"temperature": "3"}, "between 0 and 2"),
        ({"requests_per_task": "0"}, "requests_per_task"),
        ({"requests_per_task": "-1"}, "requests_per_task"),
        ({"colour": "red"}, "unknown option 'colour'"),
        ({"model": "nonsense:thing"}, "cannot be used"),
        ({"api_key": "sk-x"}, "looks like a secret"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], message: str):
    with pytest.raises(ValidationError, match=message) as err:
        agent_on(answering({}), **options)
    assert "\n" not in str(err.value)


def test_a_role_without_any_model_is_refused():
    with pytest.raises(ValidationError, match="the planner has no model"):
        make_agent(planner=PydanticAgent(), executor=PydanticAgent(), reflector=PydanticAgent())


def test_extra_options_are_let_through():
    agent = make_agent(
        planner=PydanticAgent("test"),
        executor=PydanticAgent("test"),
        reflector=PydanticAgent("test"),
        options={"region": "eu"},
        extra_options={"region"},
    )
    assert agent.options == {"region": "eu"}
