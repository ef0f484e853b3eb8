"""The budget checkpoint in the loop (memory store, a scripted agent that reports usage):
a body is given what remains of the budget; a run whose budget is spent pauses before the
next body (the next task's start, committed but never run, is given back, so the resumed run
starts it under the same attempt number); a raised budget lets it finish; set_budget is
fenced and refuses a budget no run can have before claiming."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from nanoagent_core.agents.base import Agent, ExecutionResult, ModelUsage, Reflection, Transcript
from nanoagent_core.budget import BodyLimits, Budget, current_limits, exhausted
from nanoagent_core.errors import ValidationError
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import EventKind, PauseReason, RunState, RunStatus, Task, TaskStatus
from nanoagent_core.worker import resume_run

RUN = "r1"
SPENT = 60  # tokens each body reports (40 in, 20 out)


class Spender:
    """Three tasks; each body spends SPENT tokens whatever its limit, recording the limit."""

    def __init__(self) -> None:
        self.limits: list[tuple[str, BodyLimits | None]] = []

    async def plan(self, goal: str) -> list[str]:
        return ["a", "b", "c"]

    async def execute(self, task: Task, results: Mapping[str, str], key: str) -> ExecutionResult:
        self.limits.append((key, current_limits()))
        usage = ModelUsage(requests=1, input_tokens=40, output_tokens=20, model="m")
        return ExecutionResult(True, f"did {task.description}", Transcript("[]", usage))

    async def reflect(self, goal: str, done: object, pending: object) -> Reflection:
        return Reflection(done=not pending)


@pytest.fixture
def spender(monkeypatch: pytest.MonkeyPatch) -> Spender:
    agent = Spender()
    made = Agent(name="spender", planner=agent, executor=agent, reflector=agent)
    monkeypatch.setattr("nanoagent_core.worker.load_agent", lambda name, options: made)
    return agent


async def test_a_spent_budget_pauses_before_the_next_body_and_a_raise_finishes_it(
    spender: Spender,
) -> None:
    store = MemoryStore()
    await store.create_run(
        RunState(run_id=RUN, goal="g", max_iterations=20, agent="spender", max_tokens=100)
    )
    paused = await resume_run(store, RUN, handle_signals=False)
    # a (60 of 100) ran, b was given 40 and spent 60 (not cut: this body ignores limits);
    # at 120 of 100 the run pauses before c's body
    assert [(key.split(":")[2], lim) for key, lim in spender.limits] == [
        ("1", BodyLimits(tokens=100)),
        ("1", BodyLimits(tokens=40)),
    ]
    assert (paused.status, paused.pause_reason) == (RunStatus.PAUSED, PauseReason.BUDGET)
    assert paused.pause_detail == "120 of 100 tokens spent"
    assert exhausted(paused) == "120 of 100 tokens spent"
    tasks = {t.description: t for t in await store.get_all_tasks(RUN)}
    # c's start was committed with b's outcome, then given back: its body never ran
    assert (tasks["c"].status, tasks["c"].attempts) == (TaskStatus.PENDING, 0)
    assert paused.current_task_id == tasks["c"].id
    events = await store.read_events(run_id=RUN)
    assert events[-1].kind == EventKind.RUN_PAUSED
    assert events[-1].data["task_id"] == tasks["c"].id

    done = await resume_run(store, RUN, handle_signals=False, budget=Budget(max_tokens=1000))
    assert (done.status, done.max_tokens, done.tokens_in + done.tokens_out) == (
        RunStatus.COMPLETED,
        1000,
        180,
    )
    key, limit = spender.limits[-1]
    assert key == f"{RUN}:{tasks['c'].id}:1"  # the same attempt number: its start came back
    assert limit == BodyLimits(tokens=880)
    journal = await store.get_attempts(RUN)
    assert [(a.attempt, a.outcome) for a in journal] == [(1, "done")] * 3


async def test_a_run_without_a_budget_gives_its_bodies_no_limits(spender: Spender) -> None:
    store = MemoryStore()
    await store.create_run(RunState(run_id=RUN, goal="g", max_iterations=20, agent="spender"))
    done = await resume_run(store, RUN, handle_signals=False)
    assert done.status is RunStatus.COMPLETED
    assert [lim for _, lim in spender.limits] == [None, None, None]


async def test_a_budget_no_run_can_have_is_refused_before_the_claim(spender: Spender) -> None:
    store = MemoryStore()
    await store.create_run(RunState(run_id=RUN, goal="g", max_iterations=20, agent="spender"))
    with pytest.raises(ValidationError, match="max_tokens"):
        await resume_run(store, RUN, handle_signals=False, budget=Budget(max_tokens=0))
    run = await store.get_run(RUN)
    assert (run.epoch, run.max_tokens) == (0, None)
    assert spender.limits == []
