"""A no-op agent for benchmarks: every body succeeds at once; reflection keeps adding tasks
(at most 20 at a time, the seed's limit) until ``total`` tasks exist, then says done."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence

from nanoagent_core.agents.base import Agent, ExecutionResult, ModelUsage, Reflection, Transcript
from nanoagent_core.models import Task
from nanoagent_core.rules import MAX_NEW_TASKS, MAX_PLANNED_TASKS

__all__ = ["AGENT_NAME", "JOURNAL_TRANSCRIPT", "make_noop_agent"]

AGENT_NAME = "bench-noop"

#: What a journaled attempt carries: a conversation the size of a TestModel call's (a
#: request with instructions and a prompt, a tool-call response, the tool return: ~1.5 KB of
#: pydantic-ai JSON) and its usage, at a known price.
JOURNAL_TRANSCRIPT = Transcript(
    messages_json=(
        '[{"parts":[{"content":"Your task (t-0001): '
        + "x" * 600
        + '","timestamp":"2026-01-01T00:00:00Z","part_kind":"user-prompt"}],'
        '"instructions":"Do the task and report the result","kind":"request"},'
        '{"parts":[{"tool_name":"final_result","args":{"result":"'
        + "y" * 400
        + '","success":true},"tool_call_id":"pyd_ai_tool_call_id__final_result",'
        '"part_kind":"tool-call"}],"usage":{"input_tokens":120,"output_tokens":40},'
        '"model_name":"gpt-4o","timestamp":"2026-01-01T00:00:01Z","kind":"response",'
        '"provider_name":"openai"},'
        '{"parts":[{"tool_name":"final_result","content":"Final result processed.",'
        '"tool_call_id":"pyd_ai_tool_call_id__final_result","part_kind":"tool-return"}],'
        '"kind":"request"}]'
    ),
    usage=ModelUsage(requests=1, input_tokens=120, output_tokens=40, model="gpt-4o",
                     cost_usd=0.0007),
)  # fmt: skip


class _Planner:
    def __init__(self, total: int) -> None:
        self._total = total

    async def plan(self, goal: str) -> Sequence[str]:
        return [f"task {n}" for n in range(1, min(self._total, MAX_PLANNED_TASKS) + 1)]


class _Executor:
    def __init__(self, delay: float, result: str, transcript: Transcript | None) -> None:
        self._delay = delay
        self._result = result
        self._transcript = transcript
        self._random = random.Random(1)

    async def execute(self, task: Task, results: Mapping[str, str], key: str) -> ExecutionResult:
        if self._delay:
            await asyncio.sleep(self._delay * self._random.uniform(0.5, 1.5))
        return ExecutionResult(True, self._result, self._transcript)


class _Reflector:
    def __init__(self, total: int) -> None:
        self._total = total

    async def reflect(self, goal: str, done: Sequence[Task], pending: Sequence[Task]) -> Reflection:
        known = len(done) + len(pending)
        if not pending and known >= self._total:
            return Reflection(done=True)
        if len(pending) >= MAX_NEW_TASKS or known >= self._total:
            return Reflection(done=False)
        count = min(MAX_NEW_TASKS, self._total - known)
        return Reflection(done=False, new_tasks=[f"task {known + n}" for n in range(1, count + 1)])


def make_noop_agent(
    total: int, *, delay: float = 0.0, result: str = "ok", journal: bool = False
) -> Agent:
    """An agent whose run does exactly ``total`` tasks (the run's max_iterations must be at
    least ``total``), each task's result being ``result``. With ``delay``, each body sleeps
    0.5 to 1.5 times ``delay`` seconds. With ``journal``, each attempt hands back
    JOURNAL_TRANSCRIPT, so each task's outcome commits with a journal entry."""
    return Agent(
        name=AGENT_NAME,
        planner=_Planner(total),
        executor=_Executor(delay, result, JOURNAL_TRANSCRIPT if journal else None),
        reflector=_Reflector(total),
        options={"total": str(total)},
    )
