"""A database holding one run of a model-backed agent, with its conversation journal, for
the conversation view and the usage in the detail (a plain module, like tuikit).

Written through the real SQLite store as a worker writes (claim, plan, one commit per
attempt's outcome with its journal entry); the messages are pydantic-ai's own, serialized
with ``ModelMessagesTypeAdapter``. The model's text holds control characters and markup,
which the dashboard must show as literal text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.usage import RequestUsage
from tuikit import LONG_LEASE, FakeClock, live_owner

from nanoagent_core.models import Attempt, EventKind, Phase, RunState, RunStatus, Task, TaskStatus
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SQLiteStore

RUN = "llm-5e21aa"
GOAL = "Plan a weekend in Paris"
#: A fixed time inside every message, so that the stored journal is the same every time.
STAMP = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: Model text with an escape sequence, a bell and Rich markup: all shown literally.
TRICKY = "Trains are \x1b[31mfull\x1b[0m on Friday\x07; see [bold]the timetable[/bold]."
EXECUTOR = (
    "You carry out one task of a larger plan and report what you did or found, briefly and "
    "concretely. If you cannot do it, say why and set success to false."
)

TASKS = (
    Task(id="t1", description="Find trains from Lyon to Paris on Friday evening", seq=0),
    Task(id="t2", description="List three museums open on Saturday", seq=1),
)


def _prompt(task: Task) -> ModelRequest:
    text = f"Your task ({task.id}): {task.description}\n\nDo the task and report the result."
    return ModelRequest(
        parts=[UserPromptPart(text, timestamp=STAMP)], instructions=EXECUTOR, timestamp=STAMP
    )


def _answer(*parts: TextPart | ToolCallPart, tokens: tuple[int, int]) -> ModelResponse:
    return ModelResponse(
        parts=list(parts),
        model_name="gpt-4.1",
        usage=RequestUsage(input_tokens=tokens[0], output_tokens=tokens[1]),
        timestamp=STAMP,
    )


def _returned(name: str, content: str, call: str) -> ModelRequest:
    part = ToolReturnPart(name, content, call, timestamp=STAMP)
    return ModelRequest(parts=[part], timestamp=STAMP)


def _final(result: str, success: bool, call: str, tokens: tuple[int, int]) -> list[ModelMessage]:
    args = {"result": result, "success": success}
    return [
        _answer(ToolCallPart("final_result", args, call), tokens=tokens),
        _returned("final_result", "Final result processed.", call),
    ]


def _journal(messages: list[ModelMessage]) -> str:
    return ModelMessagesTypeAdapter.dump_json(messages).decode()


def conversations() -> dict[tuple[str, int], tuple[list[ModelMessage], str, float | None]]:
    """(task, attempt) -> (messages, outcome, cost)."""
    t1, t2 = TASKS
    failed = [
        _prompt(t1),
        _answer(TextPart(TRICKY), tokens=(180, 40)),
        *_final("no seats left on Friday", False, "c0", (230, 20)),
    ]
    booked = [
        _prompt(t1),
        _answer(
            TextPart("Let me look that up."),
            ToolCallPart("search_trains", {"from": "Lyon", "to": "Paris", "day": "Fri"}, "c1"),
            tokens=(210, 35),
        ),
        _returned("search_trains", "3 trains: 17:04, 18:34, 19:04\nall with seats", "c1"),
        *_final("Booked the 18:34 train", True, "c2", (260, 25)),
    ]
    museums = [
        _prompt(t2),
        _answer(TextPart("Louvre, Orsay and Rodin.\nAll open 9:00-18:00."), tokens=(150, 30)),
        *_final("Louvre, Orsay, Rodin", True, "c3", (190, 15)),
    ]
    return {
        ("t1", 1): (failed, "failed", None),
        ("t1", 2): (booked, "done", 0.0021),
        ("t2", 1): (museums, "done", 0.0012),
    }


def _attempt(task_id: str, number: int) -> Attempt:
    messages, outcome, cost = conversations()[(task_id, number)]
    responses = [m for m in messages if isinstance(m, ModelResponse)]
    return Attempt(
        task_id=task_id,
        attempt=number,
        outcome=outcome,
        messages=_journal(messages),
        model="gpt-4.1",
        requests=len(responses),
        tokens_in=sum(r.usage.input_tokens for r in responses),
        tokens_out=sum(r.usage.output_tokens for r in responses),
        cost_usd=cost,
        seconds=1.25 * number,
    )


async def seed_llm_run(path: Path, *, finish: bool = True) -> RunState:
    """The run ``RUN``: task t1 failed once then done, t2 done; completed (``finish``
    False: t2 still in flight; :func:`finish_llm_run` commits its outcome)."""
    clock = FakeClock()
    store = await SQLiteStore.open(path, clock=clock)
    try:
        await store.create_run(
            RunState(
                run_id=RUN,
                goal=GOAL,
                max_iterations=10,
                agent="llm",
                agent_options={"model": "openai:gpt-4.1"},
            )
        )
        clock.advance(1)
        epoch = (
            await store.claim_run(RUN, live_owner(), expected_epoch=0, lease_seconds=LONG_LEASE)
        ).epoch
        t1, t2 = TASKS
        planned = NewEvent(
            kind=EventKind.PLANNED,
            data={"tasks": [{"id": t.id, "description": t.description} for t in TASKS]},
        )
        clock.advance(1)
        first = t1.model_copy(update={"attempts": 1})
        await store.commit_step(
            RUN,
            Step(phase=Phase.EXECUTING, iteration=1, current_task_id="t1", tasks=(first, t2),
                 events=(planned,)),
            epoch=epoch,
        )  # fmt: skip
        clock.advance(2)
        retry = first.model_copy(update={"attempts": 2, "failures": 1, "error": "no seats"})
        await store.commit_step(
            RUN,
            Step(phase=Phase.EXECUTING, iteration=2, current_task_id="t1", tasks=(retry,),
                 events=(NewEvent(kind=EventKind.TASK_FAILED, data={"task_id": "t1"}),),
                 attempts=(_attempt("t1", 1),)),
            epoch=epoch,
        )  # fmt: skip
        clock.advance(3)
        done1 = retry.model_copy(
            update={"status": TaskStatus.DONE, "result": "Booked the 18:34 train", "failures": 0,
                    "error": None}
        )  # fmt: skip
        started2 = t2.model_copy(update={"attempts": 1})
        await store.commit_step(
            RUN,
            Step(phase=Phase.EXECUTING, iteration=3, current_task_id="t2",
                 tasks=(done1, started2), results={"t1": "Booked the 18:34 train"},
                 events=(NewEvent(kind=EventKind.TASK_DONE, data={"task_id": "t1",
                                                                  "seconds": 2.5}),),
                 attempts=(_attempt("t1", 2),)),
            epoch=epoch,
        )  # fmt: skip
        if not finish:
            return await store.get_run(RUN)
        return await _finish(store, clock, epoch)
    finally:
        await store.close()


async def finish_llm_run(path: Path, clock: FakeClock | None = None) -> RunState:
    """Commit t2's outcome (with its journal entry) as the run's worker would."""
    store = await SQLiteStore.open(path, clock=clock or FakeClock())
    try:
        return await _finish(store, clock or FakeClock(), (await store.get_run(RUN)).epoch)
    finally:
        await store.close()


async def _finish(store: SQLiteStore, clock: FakeClock, epoch: int) -> RunState:
    """t2 done, the run completed: the last commit."""
    clock.advance(2)
    started2 = TASKS[1].model_copy(update={"attempts": 1})
    done2 = started2.model_copy(
        update={"status": TaskStatus.DONE, "result": "Louvre, Orsay, Rodin"}
    )
    return await store.commit_step(
        RUN,
        Step(phase=Phase.DONE, iteration=3, tasks=(done2,),
             results={"t2": "Louvre, Orsay, Rodin"}, status=RunStatus.COMPLETED,
             result="Completed 2 task(s)",
             events=(NewEvent(kind=EventKind.TASK_DONE, data={"task_id": "t2",
                                                              "seconds": 1.25}),
                     NewEvent(kind=EventKind.RUN_COMPLETED, data={"reason": "reflection"})),
             attempts=(_attempt("t2", 1),)),
        epoch=epoch,
    )  # fmt: skip
