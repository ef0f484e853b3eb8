"""nanoagent_tui.operations: the form's parsing and why a run cannot be resumed or aborted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nanoagent_core.actions import new_run
from nanoagent_core.defaults import DEFAULT_MAX_ITERATIONS
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import RunStatus
from nanoagent_tui.operations import (
    build_run,
    parse_options,
    why_not_abortable,
    why_not_resumable,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_the_form_parses_pairs_like_the_command() -> None:
    assert parse_options("fail=2,4 delay=0.1") == {"fail": "2,4", "delay": "0.1"}
    assert parse_options("tasks=3,delay=0.1") == {"tasks": "3", "delay": "0.1"}
    assert parse_options("   ") == {}


def test_the_form_refuses_a_repeated_key() -> None:
    """Before: the form kept the last of a repeated key silently; the command refused it."""
    with pytest.raises(ValidationError, match="given twice"):
        parse_options("tasks=1 tasks=2")


def test_the_form_refuses_a_pair_without_equals() -> None:
    with pytest.raises(ValidationError, match="KEY=VALUE"):
        parse_options("tasks")


def test_build_run_uses_the_default_iterations_and_checks_fields() -> None:
    run = build_run(" a goal ", "demo", "", "tasks=2")
    assert (run.goal, run.max_iterations, run.agent_options) == (
        "a goal",
        DEFAULT_MAX_ITERATIONS,
        {"tasks": "2"},
    )
    with pytest.raises(ValidationError, match="whole number"):
        build_run("g", "demo", "many", "")
    with pytest.raises(ValidationError, match="between 1"):
        build_run("g", "demo", "0", "")
    with pytest.raises(ValidationError, match="goal"):
        build_run("  ", "demo", "3", "")


def test_finished_runs_cannot_be_aborted_and_completed_ones_not_resumed() -> None:
    completed = new_run("r1", "g").model_copy(update={"status": RunStatus.COMPLETED})
    assert why_not_resumable(completed, NOW) == "r1 has completed: nothing to resume"
    assert "already finished" in (why_not_abortable(completed, NOW) or "")
    failed = completed.model_copy(update={"status": RunStatus.FAILED})
    assert why_not_resumable(failed, NOW) is None


def test_a_crashed_run_is_resumable_and_abortable() -> None:
    crashed = new_run("r2", "g", claim_grace=0.0)  # stored running, no worker: crashed
    assert why_not_resumable(crashed, NOW) is None
    assert why_not_abortable(crashed, NOW) is None
