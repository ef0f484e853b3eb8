"""nanoagent_tui.widgets.run_columns: columns fitted to the terminal's width."""

from __future__ import annotations

import pytest

from nanoagent_tui.widgets.run_columns import run_columns, task_columns


def _keys(width: int) -> list[str]:
    return [c.key for c in run_columns(width)]


def test_wide_terminals_show_every_run_column() -> None:
    assert _keys(160) == [
        "status", "run_id", "goal", "agent", "phase", "progress", "iteration", "tokens",
        "activity", "worker",
    ]  # fmt: skip


def test_narrow_terminals_keep_the_essentials() -> None:
    assert _keys(80) == ["status", "run_id", "goal", "progress", "activity"]
    assert "iteration" not in _keys(110)
    assert "tokens" not in _keys(110)
    assert "tokens" in _keys(120)
    assert "phase" in _keys(110)


@pytest.mark.parametrize("width", [40, 80, 100, 120, 140, 200])
def test_the_goal_takes_the_room_left_and_never_vanishes(width: int) -> None:
    columns = run_columns(width)
    goal = next(c for c in columns if c.key == "goal")
    assert goal.width >= 12
    if width >= 100:
        assert sum(c.width + 2 for c in columns) + 6 <= width


def test_task_columns_narrow_and_wide() -> None:
    narrow = [c.key for c in task_columns(60)]
    assert narrow == ["status", "task_id", "attempts", "description"]
    wide = {c.key: c.width for c in task_columns(120)}
    assert set(wide) >= {"priority", "result"}
    assert wide["description"] >= wide["result"] or wide["result"] == 8


def test_cells_render_clipped_to_their_width() -> None:
    goal = next(c for c in run_columns(80) if c.key == "goal")
    cell = goal.render("x" * 500, goal.width)
    assert len(cell.plain) == goal.width
    assert cell.plain.endswith("…")
