"""pydantic-ai deferred tools (requires_approval=True) mapped onto nanoagent approvals, with
a scripted FunctionModel (offline): the executor's call that hits such a tool asks for
approval with the tool's name and arguments and the conversation so far; the re-run attempt
continues that conversation with the recorded decision, so the tool runs only when approved,
with exactly the arguments reviewed, and a denial reaches the model with its reason."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from nanoagent_core import approvals
from nanoagent_core.agents.pydantic_ai import make_agent
from nanoagent_core.approvals import ApprovalNeeded, Decision
from nanoagent_core.models import Task

TASK = Task(id="t1", description="Book the train", attempts=1)
ARGS = {"origin": "Paris", "destination": "Lisbon", "seats": 2}


def scripted(returns: list[str]) -> FunctionModel:
    """Calls book_train first; once the tool's return (or denial) is in, reports it."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        back = [p for p in last.parts if isinstance(p, ToolReturnPart)]
        if not back:
            return ModelResponse(parts=[ToolCallPart("book_train", ARGS, tool_call_id="c1")])
        returns.append(str(back[0].content))
        (tool,) = info.output_tools
        return ModelResponse(
            parts=[ToolCallPart(tool.name, {"result": returns[-1], "success": True})]
        )

    return FunctionModel(respond, model_name="scripted")


def build(booked: list[dict[str, Any]], returns: list[str]) -> Any:
    pai = PydanticAgent(scripted(returns))

    @pai.tool_plain(requires_approval=True)
    def book_train(origin: str, destination: str, seats: int) -> str:  # pyright: ignore[reportUnusedFunction]
        booked.append({"origin": origin, "destination": destination, "seats": seats})
        return f"booked {seats} seats {origin}-{destination}"

    return make_agent(planner=pai, executor=pai, reflector=pai)


async def ask(agent: Any) -> ApprovalNeeded:
    with pytest.raises(ApprovalNeeded) as caught:
        await agent.executor.execute(TASK, {}, "run-1:t1:1")
    return caught.value


@pytest.mark.parametrize("approve", [True, False])
async def test_a_tool_that_requires_approval_waits_then_gets_the_decision(approve: bool) -> None:
    booked: list[dict[str, Any]] = []
    returns: list[str] = []
    agent = build(booked, returns)
    need = await ask(agent)
    assert (need.what, dict(need.arguments)) == ("book_train", ARGS)
    assert need.messages
    assert "book_train" in need.messages
    assert booked == []  # nothing ran while waiting
    request = approvals.new_request("run-1", "t1", 1, need)
    decided = request.model_copy(
        update={
            "decision": Decision.APPROVED if approve else Decision.DENIED,
            "reason": None if approve else "too expensive",
        }
    )
    with approvals.deciding([decided]):
        outcome = await agent.executor.execute(TASK, {}, "run-1:t1:2")
    assert outcome.success
    if approve:
        assert booked == [ARGS]
        assert returns == ["booked 2 seats Paris-Lisbon"]
    else:
        assert booked == []
        assert returns == ["A person denied this call: too expensive"]
    assert outcome.transcript is not None


async def test_a_pending_or_other_decision_does_not_run_the_tool() -> None:
    booked: list[dict[str, Any]] = []
    agent = build(booked, [])
    need = await ask(agent)
    pending = approvals.new_request("run-1", "t1", 1, need)
    # a decision bound to other arguments does not count for these
    other = approvals.new_request(
        "run-1",
        "t1",
        1,
        ApprovalNeeded("book_train", {**ARGS, "seats": 9}, "", messages=need.messages),
    ).model_copy(update={"decision": Decision.APPROVED})
    with approvals.deciding([pending]), pytest.raises(ApprovalNeeded) as again:
        await agent.executor.execute(TASK, {}, "run-1:t1:2")
    assert dict(again.value.arguments) == ARGS
    with approvals.deciding([other]):
        try:
            outcome = await agent.executor.execute(TASK, {}, "run-1:t1:3")
        except ApprovalNeeded:
            pass
        else:
            assert not outcome.success
    assert booked == []
