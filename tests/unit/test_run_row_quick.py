"""The quick run-row reader gives exactly what the careful one gives, or steps aside."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nanoagent_core import rows, runrow
from nanoagent_core.models import Phase, RunState, RunStatus, Task, TaskStatus
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.replace import replace
from nanoagent_core.sqlite import SQLiteStore, sql
from nanoagent_core.sqlite.ops import dt


def _row(**changes: Any) -> tuple[Any, ...]:
    fields: dict[str, Any] = {
        "run_id": "r1", "goal": "g", "max_iterations": 5, "agent": "demo",
        "agent_options": json.dumps({"tasks": "2"}), "phase": "executing", "iteration": 3,
        "current_task_id": "t-3", "status": "running", "created_at": 1.5, "updated_at": 2.25,
        "finished_at": None, "owner_host": "h", "owner_pid": 42, "owner_pid_started": 3.0,
        "epoch": 1, "heartbeat_at": 2.0, "lease_expires_at": 32.0,
        "abort_requested_at": None, "error": None, "result": None,
        "tasks_total": 4, "tasks_done": 2,
        "requests": 3, "tokens_in": 10, "tokens_out": 20, "cost_usd": 0.5, "cost_unknown": 1,
        "pause_reason": None, "pause_detail": None, "max_tokens": None, "max_cost_usd": None,
    }  # fmt: skip
    fields.update(changes)
    return tuple(fields.values())


SOUND = [
    _row(),
    _row(owner_host=None, owner_pid=None, owner_pid_started=None, lease_expires_at=None),
    _row(owner_pid_started=None),
    _row(status="completed", phase="done", finished_at=9.0, result="all done", cost_usd=None),
    _row(status="failed", error="boom", abort_requested_at=7.0, agent_options="{}"),
    _row(current_task_id=None, cost_usd=2, created_at=0.0),
    _row(
        status="paused",
        pause_reason="budget",
        pause_detail="95 of 1 tokens spent",
        max_tokens=1,
        max_cost_usd=2,
        owner_host=None,
        owner_pid=None,
    ),
]
DAMAGED = [
    _row(status="exploded"),
    _row(phase=7),
    _row(agent_options="{not json"),
    _row(agent_options='{"n": 1}'),
    _row(agent_options="[]"),
    _row(goal=None),
    _row(epoch="1"),
    _row(owner_pid="x"),
    _row(owner_pid=True),
    _row(cost_usd="free"),
    _row(updated_at="noon"),
    _row(error=5),
    _row(status="paused", pause_reason="coffee"),
    _row(max_tokens="many"),
]


def _same(a: RunState, b: RunState) -> None:
    assert a == b
    assert list(a.__dict__) == list(b.__dict__)
    assert a.model_fields_set == b.model_fields_set
    assert a.model_dump() == b.model_dump()


@pytest.mark.parametrize("row", SOUND)
def test_a_sound_row_reads_the_same_the_quick_way(row: tuple[Any, ...]) -> None:
    quick = runrow.quick_run_from_row(row, dt)
    assert quick is not None
    _same(quick, rows.run_from_row(row, dt))
    assert quick.damaged is None


@pytest.mark.parametrize("row", [*DAMAGED, ("r1", "g"), (*_row(), "extra column")])
def test_anything_unexpected_is_left_to_the_careful_reader(row: tuple[Any, ...]) -> None:
    assert runrow.quick_run_from_row(row, dt) is None


def test_the_quick_build_is_model_construct() -> None:
    """RunState still constructs plainly (no aliases, hooks or new fields): otherwise the
    quick reader falls back to model_construct, correct but slow; update runrow._KEYS."""
    assert runrow.PLAIN_CONSTRUCT


def test_cached_options_are_not_shared() -> None:
    first = runrow.quick_run_from_row(_row(), dt)
    second = runrow.quick_run_from_row(_row(), dt)
    assert first is not None
    assert second is not None
    first.agent_options["tasks"] = "99"
    assert second.agent_options == {"tasks": "2"}
    third = runrow.quick_run_from_row(_row(), dt)
    assert third is not None
    assert third.agent_options == {"tasks": "2"}


async def test_rows_the_sqlite_store_writes_take_the_quick_way(tmp_path: Path) -> None:
    """Every column of SELECT_RUN is one the quick reader knows (a column added to the runs
    table but not to runrow would send every step to the slow reader)."""
    db = tmp_path / "q.db"
    store = await SQLiteStore.open(db)
    try:
        await store.create_run(RunState(run_id="r1", goal="g", max_iterations=3))
        step = Step(
            phase=Phase.EXECUTING,
            iteration=1,
            current_task_id="a",
            tasks=(Task(id="a", description="do a", seq=0),),
            events=(NewEvent(kind="task_started", data={"task_id": "a"}),),
        )
        ours = await store.commit_step("r1", step, epoch=0)
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(sql.SELECT_RUN, ("r1",)).fetchone()
    finally:
        conn.close()
    quick = runrow.quick_run_from_row(row, dt)
    assert quick is not None
    _same(quick, rows.run_from_row(row, dt))
    _same(quick, ours)
    assert (quick.tasks_total, quick.tasks_done, quick.current_task_id) == (1, 0, "a")


def test_replace_equals_model_copy() -> None:
    task = Task(id="a", description="do a", seq=0)
    for changes in ({"status": TaskStatus.DONE, "result": "r"}, {"attempts": 2}, {}):
        _same_model(replace(task, **changes), task.model_copy(update=changes))
    step = Step(phase=Phase.EXECUTING, iteration=1, status=RunStatus.RUNNING)
    _same_model(
        replace(step, tasks=(task,), results={"a": "r"}),
        step.model_copy(update={"tasks": (task,), "results": {"a": "r"}}),
    )
    assert replace(task).model_dump() == task.model_dump()


def _same_model(a: Any, b: Any) -> None:
    assert a == b
    assert a.__dict__ == b.__dict__
    assert a.model_fields_set == b.model_fields_set
    assert type(a) is type(b)
