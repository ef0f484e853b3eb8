"""nanoagent_core.rules: the seed's fixed rules."""

from __future__ import annotations

import pytest

from nanoagent_core.models import Task, TaskStatus
from nanoagent_core.rules import RESULT_PREVIEW, is_suspicious, synthesize_result, task_id_for


@pytest.mark.parametrize(
    "text",
    ["ls; rm x", "a | b", "rm -rf /", "DROP TABLE runs", "eval(x)", "echo $HOME", "`id`"],
)
def test_injected_commands_are_suspicious(text: str) -> None:
    assert is_suspicious(text)


@pytest.mark.parametrize("text", ["Draft the outline", "Compare journal modes", "remove noise"])
def test_plain_descriptions_are_not(text: str) -> None:
    assert not is_suspicious(text)


def test_task_ids_are_derived_and_avoid_taken_ones() -> None:
    first = task_id_for("goal", 1, "do it", set())
    assert first == task_id_for("goal", 1, "do it", set())
    assert len(first) == 8
    assert task_id_for("goal", 2, "do it", set()) != first
    other = task_id_for("goal", 1, "do it", {first})
    assert other != first
    assert len(other) == 8


def test_the_synthesized_result_lists_tasks_with_clipped_results() -> None:
    done = [
        Task(id="a", description="one", status=TaskStatus.DONE, result="short"),
        Task(id="b", description="two", status=TaskStatus.DONE, result="x" * 500),
    ]
    text = synthesize_result(done)
    lines = text.splitlines()
    assert lines[0] == "Completed 2 task(s):"
    assert lines[1:3] == ["1. one", "   Result: short"]
    assert lines[4] == "   Result: " + "x" * RESULT_PREVIEW + "..."
