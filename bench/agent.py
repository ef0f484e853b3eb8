"""A no-op agent for benchmarks: every body succeeds at once; reflection keeps adding tasks
(at most 20 at a time, the seed's limit) until ``total`` tasks exist, then says done."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence

from nanoagent_core.agents.base import Agent, ExecutionResult, Reflection
from nanoagent_core.models import Task
from nanoagent_core.rules import MAX_NEW_TASKS, MAX_PLANNED_TASKS

__all__ = ["AGENT_NAME", "make_noop_agent"]

AGENT_NAME = "bench-noop"


class _Planner:
    def __init__(self, total: int) -> None:
        self._total = total

    async def plan(self, goal: str) -> Sequence[str]:
        return [f"task {n}" for n in range(1, min(self._total, MAX_PLANNED_TASKS) + 1)]


class _Executor:
    def __init__(self, delay: float, result: str) -> None:
        self._delay = delay
        self._result = result
        self._random = random.Random(1)

    async def execute(self, task: Task, results: Mapping[str, str], key: str) -> ExecutionResult:
        if self._delay:
            await asyncio.sleep(self._delay * self._random.uniform(0.5, 1.5))
        return ExecutionResult(True, self._result)


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


def make_noop_agent(total: int, *, delay: float = 0.0, result: str = "ok") -> Agent:
    """An agent whose run does exactly ``total`` tasks (the run's max_iterations must be at
    least ``total``), each task's result being ``result``. With ``delay``, each body sleeps
    0.5 to 1.5 times ``delay`` seconds."""
    return Agent(
        name=AGENT_NAME,
        planner=_Planner(total),
        executor=_Executor(delay, result),
        reflector=_Reflector(total),
        options={"total": str(total)},
    )
