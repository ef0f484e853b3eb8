"""nanoagent_core.rows: stored rows to models, a damaged field flagged rather than fatal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from nanoagent_core.models import RunStatus, Task, TaskStatus
from nanoagent_core.rows import (
    DamagedRowError,
    run_from_row,
    task_from_row,
    task_upserts,
)


def _when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def _run_row(**changes: Any) -> tuple[Any, ...]:
    fields: dict[str, Any] = {
        "run_id": "r1", "goal": "g", "max_iterations": 5, "agent": "demo",
        "agent_options": json.dumps({"tasks": "2"}), "phase": "planning", "iteration": 0,
        "current_task_id": None, "status": "running", "created_at": 1.0, "updated_at": 2.0,
        "finished_at": None, "owner_host": "h", "owner_pid": 42, "owner_pid_started": 3.0,
        "epoch": 1, "heartbeat_at": None, "lease_expires_at": None,
        "abort_requested_at": None, "error": None, "result": None,
        "tasks_total": 0, "tasks_done": 0,
        "requests": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": None, "cost_unknown": 0,
        "pause_reason": None, "pause_detail": None, "max_tokens": None, "max_cost_usd": None,
    }  # fmt: skip
    fields.update(changes)
    return tuple(fields.values())


def test_a_sound_row_reads_back_undamaged() -> None:
    run = run_from_row(_run_row(), _when)
    assert run.damaged is None
    assert run.status is RunStatus.RUNNING
    assert run.agent_options == {"tasks": "2"}
    assert run.owner is not None
    assert run.owner.pid == 42


def test_a_bad_field_is_flagged_not_fatal() -> None:
    run = run_from_row(_run_row(status="exploded", agent_options="{not json"), _when)
    assert run.damaged is not None
    assert "status: not a known status" in run.damaged
    assert "agent_options" in run.damaged
    assert "exploded" not in run.damaged  # the stored value is not quoted back


def test_a_row_of_the_wrong_shape_is_damaged() -> None:
    with pytest.raises(DamagedRowError):
        run_from_row(("r1", "g"), _when)


def test_tasks_read_back_and_upserts_keep_the_last_of_each_id() -> None:
    task = task_from_row(("t1", "do", "done", 5, "ok", 1, 0, None, 3))
    assert task.status is TaskStatus.DONE
    assert task.seq == 3
    first = Task(id="a", description="x")
    again = Task(id="a", description="x", status=TaskStatus.DONE)
    other = Task(id="b", description="y")
    params, ids, done = task_upserts("r1", [first, other, again])
    assert ids == ["a", "b"]
    assert done == 1
    assert params[0]["status"] == "done"
    assert params[0]["run_id"] == "r1"


def test_a_paused_row_reads_its_reason_and_an_unknown_reason_is_flagged() -> None:
    from nanoagent_core.models import PauseReason

    run = run_from_row(
        _run_row(status="paused", pause_reason="budget", pause_detail="5 of 1", max_tokens=1),
        _when,
    )
    assert (run.status, run.pause_reason, run.pause_detail, run.max_tokens, run.damaged) == (
        RunStatus.PAUSED,
        PauseReason.BUDGET,
        "5 of 1",
        1,
        None,
    )
    odd = run_from_row(_run_row(status="paused", pause_reason="lunch"), _when)
    assert odd.pause_reason is None
    assert odd.damaged is not None
    assert "pause_reason: not a known pause reason" in odd.damaged
