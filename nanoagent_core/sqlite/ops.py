"""The pieces of the SQLite store's transactions, run on the connection's thread: rows
read back into records, event rows, refusals read from the database, task upserts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from nanoagent_core import rows
from nanoagent_core import store_rules as rules
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import Attempt, Event, ModelCall, RunState, RunStatus, Task
from nanoagent_core.protocols import NewEvent
from nanoagent_core.runrow import quick_run_from_row
from nanoagent_core.sqlite import sql, sql_calls

Row = rows.Row


def ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


DamagedRowError = rows.DamagedRowError
decoder = rows.decoder
task_from_row = rows.task_from_row
attempt_from_row = rows.attempt_from_row
call_from_row = rows.call_from_row


def run_from_row(row: Row) -> RunState:
    return quick_run_from_row(row, dt) or rows.run_from_row(row, dt)


def event_from_row(row: Row) -> Event:
    return rows.event_from_row(row, dt)


@decoder
def count_from_row(row: Row) -> tuple[RunStatus, int]:
    status, count = row
    return RunStatus(status), int(count)


@decoder
def result_from_row(row: Row) -> tuple[str, str]:
    task_id, result = row
    if not isinstance(task_id, str) or not isinstance(result, str):
        raise TypeError(f"result row holds {type(task_id).__name__}, {type(result).__name__}")
    return task_id, result


def event_params(run_id: str, now: float, events: Iterable[NewEvent]) -> list[Row]:
    return [(run_id, now, event.kind, rules.event_json(event)) for event in events]


def fence_failure(conn: sqlite3.Connection, run_id: str, epoch: int) -> NanoagentError:
    row = conn.execute(sql.SELECT_EPOCH, (run_id,)).fetchone()
    return rules.fence_refusal(run_id, None if row is None else row[0], epoch)


def claim_refusal(conn: sqlite3.Connection, run_id: str, expected_epoch: int) -> NanoagentError:
    row = conn.execute(sql.SELECT_RUN, (run_id,)).fetchone()
    return rules.claim_refusal(run_id, None if row is None else run_from_row(row), expected_epoch)


def check_tasks_exist(conn: sqlite3.Connection, run_id: str, task_ids: Iterable[str]) -> None:
    """ValidationError for a result naming a task the run does not have (the foreign key
    would refuse it too, but without saying which task)."""
    for task_id in task_ids:
        if conn.execute(sql.TASK_EXISTS, (run_id, task_id)).fetchone() is None:
            raise rules.missing_task(run_id, task_id)


class TaskChanges(NamedTuple):
    """What upserting a step's tasks does: how the run's counters move (``added`` new tasks,
    ``done`` more done ones), the tasks already stored (updated in place) and the new ones
    (inserted, each taking the run's next seq in this order)."""

    added: int
    done: int
    updates: list[dict[str, Any]]
    inserts: list[dict[str, Any]]


NO_TASK_CHANGES = TaskChanges(0, 0, [], [])


def task_changes(conn: sqlite3.Connection, run_id: str, tasks: Iterable[Task]) -> TaskChanges:
    """Each task's stored status, looked up (one primary-key lookup a task: the cost does
    not grow with the run's tasks), against what the upsert will write."""
    params, _, done = rows.task_upserts(run_id, tasks)
    added = 0
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for param in params:
        row = conn.execute(sql.TASK_STATUS, (run_id, param["task_id"])).fetchone()
        if row is None:
            added += 1
            inserts.append(param)
        else:
            done -= row[0] == "done"
            updates.append(param)
    return TaskChanges(added, done, updates, inserts)


def write_tasks(conn: sqlite3.Connection, changes: TaskChanges) -> None:
    if changes.updates:
        conn.executemany(sql.UPDATE_TASK, changes.updates)
    if changes.inserts:
        conn.executemany(sql.UPSERT_TASK, changes.inserts)


def upsert_tasks(conn: sqlite3.Connection, run_id: str, tasks: Iterable[Task]) -> None:
    """Insert or replace tasks, moving the run's task counters by the difference (only when
    they change: a task's start changes neither)."""
    changes = task_changes(conn, run_id, tasks)
    if changes.added or changes.done:
        conn.execute(sql.MOVE_TASK_COUNTERS, (changes.added, changes.done, run_id))
    write_tasks(conn, changes)


def insert_attempts(conn: sqlite3.Connection, run_id: str, attempts: Sequence[Attempt]) -> None:
    """Journal rows. The constraints refuse an entry naming a task the run does not have or
    a (task, attempt) already journaled; only then is it looked up which, to say so
    (ValidationError: the whole step is refused)."""
    for attempt in attempts:  # one per step, as a rule
        try:
            conn.execute(sql.INSERT_ATTEMPT, rules.attempt_params(run_id, attempt))
        except sqlite3.IntegrityError:
            if conn.execute(sql.TASK_EXISTS, (run_id, attempt.task_id)).fetchone() is None:
                raise rules.missing_task(run_id, attempt.task_id) from None
            key = (run_id, attempt.task_id, attempt.attempt)
            if conn.execute(sql.ATTEMPT_EXISTS, key).fetchone() is not None:
                raise rules.duplicate_attempt(run_id, attempt) from None
            raise


def insert_calls(conn: sqlite3.Connection, run_id: str, calls: Sequence[ModelCall]) -> None:
    """The planner's and reflector's journal rows, numbered as they are inserted."""
    for call in calls:
        conn.execute(sql_calls.INSERT_CALL, rules.call_params(run_id, call))
