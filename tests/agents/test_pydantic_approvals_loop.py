"""A pydantic-ai agent whose tool requires approval, driven by the real loop over the memory
store and the SQLite store: the run pauses with the request (tool name, arguments, the
conversation) and the attempt journaled as ``approval``; a decision recorded by the store
reaches the re-run attempt, which continues the conversation; the tool runs once, only when
approved."""

from __future__ import annotations

from pathlib import Path
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

from nanoagent_core.agents.base import Agent
from nanoagent_core.agents.pydantic_ai import make_agent
from nanoagent_core.approvals import Decision
from nanoagent_core.loop import Loop
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import PauseReason, RunState, RunStatus
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import Store
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.worker import drive

ARGS = {"city": "Lisbon", "nights": 2}


def build(booked: list[dict[str, Any]]) -> Agent:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        (tool,) = info.output_tools
        fields = set(tool.parameters_json_schema.get("properties", {}))
        if "tasks" in fields:  # the planner
            return ModelResponse(parts=[ToolCallPart(tool.name, {"tasks": ["Book the hotel"]})])
        if "done" in fields:  # the reflector
            return ModelResponse(parts=[ToolCallPart(tool.name, {"done": True})])
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        back = [p for p in last.parts if isinstance(p, ToolReturnPart)]
        if not back:
            return ModelResponse(parts=[ToolCallPart("book_hotel", ARGS, tool_call_id="h1")])
        result = {"result": str(back[0].content), "success": True}
        return ModelResponse(parts=[ToolCallPart(tool.name, result)])

    pai = PydanticAgent(FunctionModel(respond, model_name="scripted"))

    @pai.tool_plain(requires_approval=True)
    def book_hotel(city: str, nights: int) -> str:  # pyright: ignore[reportUnusedFunction]
        booked.append({"city": city, "nights": nights})
        return f"booked {nights} nights in {city}"

    return make_agent(planner=pai, executor=pai, reflector=pai)


async def run_once(store: Store, agent: Agent, expected_epoch: int) -> RunState:
    claimed = await store.claim_run("r1", current_owner(), expected_epoch=expected_epoch,
                                    lease_seconds=60)  # fmt: skip
    return await drive(store, Loop(store, claimed, agent), heartbeat=30, handle_signals=False)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("approve", [True, False])
async def test_a_tool_that_requires_approval_pauses_the_run_until_decided(
    tmp_path: Path, kind: str, approve: bool
) -> None:
    store: Store = MemoryStore() if kind == "memory" else await SQLiteStore.open(tmp_path / "a.db")
    try:
        booked: list[dict[str, Any]] = []
        agent = build(booked)
        await store.create_run(RunState(run_id="r1", goal="Weekend", max_iterations=5, agent="x"))
        paused = await run_once(store, agent, 0)
        assert (paused.status, paused.pause_reason) == (RunStatus.PAUSED, PauseReason.APPROVAL)
        (request,) = await store.get_approvals("r1")
        assert (request.what, request.arguments_value()) == ("book_hotel", ARGS)
        assert request.messages is not None
        assert "book_hotel" in request.messages
        journal = await store.get_attempts("r1")
        assert [a.outcome for a in journal] == ["approval"]
        assert booked == []

        # resumed before anyone decided: it asks again (the same request) and waits again
        again = await run_once(store, agent, paused.epoch)
        assert again.status is RunStatus.PAUSED
        assert [r.id for r in await store.get_approvals("r1")] == [request.id]

        await store.decide_approval("r1", request.id, approve=approve, reason="over budget")
        done = await run_once(store, agent, again.epoch)
        assert done.status is RunStatus.COMPLETED
        assert booked == ([ARGS] if approve else [])
        _, _, results = await store.get_run_detail("r1")
        (result,) = results.values()
        expected = "booked 2 nights in Lisbon" if approve else "denied this call: over budget"
        assert expected in result
        (stored,) = await store.get_approvals("r1")
        assert stored.decision is (Decision.APPROVED if approve else Decision.DENIED)
    finally:
        await store.close()
