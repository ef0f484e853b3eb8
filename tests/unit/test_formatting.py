"""nanoagent_tui.formatting: the dashboard's words, clips and rows (no Textual app)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nanoagent_core.actions import new_run
from nanoagent_core.models import Phase, RunStatus, Task, TaskStatus
from nanoagent_tui.formatting import (
    ABORTING,
    ago,
    clip,
    duration,
    in_flight,
    progress_text,
    run_row,
    short_id,
    span,
    status_word,
    task_row,
    worker_text,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_clip_flattens_and_fits_the_width() -> None:
    assert clip("a\n b\tc", 10) == "a b c"
    assert clip("abcdef", 4) == "abc…"
    assert clip("abc", 0) == ""
    assert short_id("0123456789abcdef", 8) == "0123456…"
    assert short_id("short", 8) == "short"


def test_spans_and_durations() -> None:
    assert span(4.9) == "4s"
    assert span(125) == "2m"
    assert span(3 * 3600 + 5) == "3h"
    assert span(2 * 86_400) == "2d"
    assert ago(NOW, None) == "—"
    assert ago(NOW, NOW) == "just now"
    assert ago(NOW, NOW - timedelta(minutes=5)) == "5m ago"
    assert duration(1.5) == "1.5s"
    assert duration(125) == "2m05s"


def test_progress_bar_fills_by_share() -> None:
    assert progress_text(3, 6, width=6).plain == "███░░░ 3/6"
    assert progress_text(0, 0, width=4).plain == "░░░░ 0/0"
    assert progress_text(9, 6, width=2).plain == "██ 9/6"


def test_status_words_of_finished_and_aborting_runs() -> None:
    run = new_run("r1", "goal").model_copy(update={"status": RunStatus.COMPLETED})
    assert status_word(run, NOW) == "completed"
    assert worker_text(run) == "—"
    row = run_row(run, NOW)
    assert row.status == "completed"
    assert row.progress == (0, 0)
    assert row.goal == "goal"
    assert ABORTING == "aborting"


def test_in_flight_is_the_current_task_of_an_executing_run() -> None:
    run = new_run("r1", "goal").model_copy(
        update={"phase": Phase.EXECUTING, "current_task_id": "t1"}
    )
    assert in_flight(run) == "t1"
    assert in_flight(run.model_copy(update={"status": RunStatus.FAILED})) is None


def test_task_rows_say_in_flight_and_retrying() -> None:
    task = Task(id="t1", description="a\nb", failures=1)
    assert task_row(task, "t1").status == "in flight"
    assert task_row(task, None).status == "retrying"
    done = Task(id="t2", description="d", status=TaskStatus.DONE, result="r\nr")
    row = task_row(done, None)
    assert (row.status, row.description, row.result) == ("done", "d", "r r")
