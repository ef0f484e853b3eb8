"""The pieces of the SQLite store's transactions, run on the connection's thread: rows
read back into records, event rows, refusals read from the database, task upserts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from nanoagent_core import rows
from nanoagent_core import store_rules as rules
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import Attempt, Event, RunState, RunStatus, Task
from nanoagent_core.protocols import NewEvent
from nanoagent_core.sqlite import sql

Row = rows.Row


def ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


DamagedRowError = rows.DamagedRowError
decoder = rows.decoder
task_from_row = rows.task_from_row
attempt_from_row = rows.attempt_from_row


def run_from_row(row: Row) -> RunState:
    return rows.run_from_row(row, dt)


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


def upsert_tasks(conn: sqlite3.Connection, run_id: str, tasks: Iterable[Task]) -> None:
    """Insert or replace tasks, moving the run's task counters by the difference (counted
    before the rows change, so the cost does not grow with the run's tasks)."""
    params, ids, done = rows.task_upserts(run_id, tasks)
    conn.execute(sql.COUNT_TASK_CHANGES, {"run_id": run_id, "ids": json.dumps(ids), "done": done})
    conn.executemany(sql.UPSERT_TASK, params)


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
