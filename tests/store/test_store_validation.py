"""Input limits (issue 2 section 6) and the error hierarchy."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

import pytest

from nanoagent_core import errors
from nanoagent_core.errors import NanoagentError, RunAbortedError, ValidationError
from nanoagent_core.models import MAX_GOAL_CHARS, RunState, Task, check_run_id, validated


def run_fields(**overrides: Any) -> dict[str, Any]:
    return {"run_id": "r", "goal": "g", "max_iterations": 1} | overrides


@pytest.mark.parametrize("run_id", ["a", "A-z_09", "x" * 64, "-", "_"])
def test_valid_run_ids(run_id: str) -> None:
    assert validated(RunState, **run_fields(run_id=run_id)).run_id == run_id
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize(
    "run_id", ["", "x" * 65, "a b", "a/b", "a.b", "../etc", "ü", "a\n", "a;drop", "%", "*"]
)
def test_invalid_run_ids(run_id: str) -> None:
    with pytest.raises(ValidationError, match="run_id"):
        validated(RunState, **run_fields(run_id=run_id))
    with pytest.raises(ValidationError, match="run id"):
        check_run_id(run_id)


@pytest.mark.parametrize("goal", ["x", "x" * MAX_GOAL_CHARS, "  padded  "])
def test_valid_goals(goal: str) -> None:
    assert validated(RunState, **run_fields(goal=goal)).goal == goal


@pytest.mark.parametrize("goal", ["", " ", "\n\t", "x" * (MAX_GOAL_CHARS + 1)])
def test_invalid_goals(goal: str) -> None:
    with pytest.raises(ValidationError, match="goal"):
        validated(RunState, **run_fields(goal=goal))


@pytest.mark.parametrize("value", [1, 2, 10_000])
def test_valid_max_iterations(value: int) -> None:
    assert validated(RunState, **run_fields(max_iterations=value)).max_iterations == value


@pytest.mark.parametrize("value", [0, -1, 10_001])
def test_invalid_max_iterations(value: int) -> None:
    with pytest.raises(ValidationError, match="max_iterations"):
        validated(RunState, **run_fields(max_iterations=value))


@pytest.mark.parametrize("value", [1, 5, 10])
def test_valid_priorities(value: int) -> None:
    assert validated(Task, id="t", description="d", priority=value).priority == value


@pytest.mark.parametrize("value", [0, 11, -3])
def test_invalid_priorities(value: int) -> None:
    with pytest.raises(ValidationError, match="priority"):
        validated(Task, id="t", description="d", priority=value)


def test_naive_datetimes_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        validated(RunState, **run_fields(created_at=datetime(2026, 1, 1)))


def test_validation_message_is_one_clear_line() -> None:
    with pytest.raises(ValidationError) as raised:
        validated(RunState, **run_fields(goal="", max_iterations=0, run_id="bad id"))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(("run_id:", "goal:", "max_iterations:"))
    assert raised.value.__cause__ is None  # no pydantic traceback chained in


def test_every_error_class_derives_from_the_root() -> None:
    classes = [
        obj
        for name in errors.__all__
        if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, BaseException)
    ]
    assert len(classes) == len(errors.__all__)
    for cls in classes:
        if cls is RunAbortedError:  # deliberately a BaseException, like CancelledError
            assert not issubclass(cls, Exception)
            continue
        assert issubclass(cls, NanoagentError), cls
        default = str(cls())
        assert default, cls
        assert "\n" not in default
        assert isinstance(cls.exit_code, int)
