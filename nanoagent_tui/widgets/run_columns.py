"""The columns of the runs table and of the tasks table, fitted to the terminal's width."""

from __future__ import annotations

from rich.text import Text

from nanoagent_tui.formatting import clip, progress_text, short_id, status_text, task_status_text
from nanoagent_tui.widgets.keyed_table import Column

__all__ = ["run_columns", "task_columns"]

#: Each column's cells have one cell of padding on either side.
_PADDING = 2
#: Room for the vertical scrollbar and the borders.
_CHROME = 4


def _plain(value: object, width: int) -> Text:
    return Text(clip(str(value), width), no_wrap=True, end="")


def _dim(value: object, width: int) -> Text:
    return Text(clip(str(value), width), style="bright_black", no_wrap=True, end="")


def _status(value: object, width: int) -> Text:
    return status_text(str(value))


def _run_id(value: object, width: int) -> Text:
    return Text(short_id(str(value), width), style="cyan", no_wrap=True, end="")


def _counts(value: object) -> tuple[int, int]:
    match value:
        case (int(first), int(second)):
            return first, second
        case _:
            return 0, 0


def _pair(value: object, width: int) -> Text:
    first, second = _counts(value)
    return Text(f"{first}/{second}".rjust(width), no_wrap=True, end="")


def _right(value: object, width: int) -> Text:
    return Text(clip(str(value), width).rjust(width), no_wrap=True, end="")


def _progress(value: object, width: int) -> Text:
    done, total = _counts(value)
    return progress_text(done, total, width=max(3, width - 6))


def run_columns(width: int) -> list[Column]:
    """The runs table's columns for a terminal ``width`` cells wide: all of them from 140
    cells; without agent and worker from 100 (and without iteration and tokens below 120);
    only status, id, goal, progress and activity below 100. The goal takes the room left."""
    wide, medium, roomy = width >= 140, width >= 100, width >= 120
    columns = [
        Column("status", "status", 13, _status),
        Column("run_id", "run", 17 if wide else 15 if roomy else 13 if medium else 12, _run_id),
        Column("goal", "goal", 0, _plain),
    ]
    if wide:
        columns.append(Column("agent", "agent", 8, _dim))
    if medium:
        columns.append(Column("phase", "phase", 10, _plain))
    columns.append(Column("progress", "tasks", 12 if medium else 11, _progress))
    if roomy:
        columns.append(Column("iteration", "iter", 8, _pair))
        columns.append(Column("tokens", "tokens", 6, _right))
    columns.append(Column("activity", "activity", 8, _dim))
    if wide:
        columns.append(Column("worker", "worker", 18, _dim))
    used = sum(column.width + _PADDING for column in columns) + _PADDING + _CHROME
    goal = max(12, width - used)
    return [Column(c.key, c.label, goal, c.render) if c.key == "goal" else c for c in columns]


def _task_status(value: object, width: int) -> Text:
    return task_status_text(str(value))


def _number(value: object, width: int) -> Text:
    return Text(str(value).rjust(width), no_wrap=True, end="")


def task_columns(width: int) -> list[Column]:
    """The tasks table's columns for a table ``width`` cells wide (below 70 cells: status,
    id, attempts and description; the result pane beside it shows the rest)."""
    narrow = width < 70
    columns = [
        Column("status", "status", 11, _task_status),
        Column("task_id", "task", 8, _run_id),
    ]
    if not narrow:
        columns.append(Column("priority", "prio", 4, _number))
    columns += [
        Column("attempts", "tries", 5, _number),
        Column("description", "description", 0, _plain),
    ]
    if not narrow:
        columns.append(Column("result", "result", 0, _dim))
    fixed = [column for column in columns if column.width]
    used = sum(c.width for c in fixed) + _PADDING * len(columns) + _CHROME
    room = max(20, width - used)
    description = room if narrow else max(10, room * 3 // 5)
    result = max(8, room - description)
    sized = {"description": description, "result": result}
    return [
        Column(c.key, c.label, sized[c.key], c.render) if c.key in sized else c for c in columns
    ]
