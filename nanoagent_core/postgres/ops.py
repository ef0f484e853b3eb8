"""The pieces of the PostgreSQL store's operations: rows read back into records, the task
upsert statements, and why a write was refused (read in its transaction, worded by
store_rules)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from nanoagent_core import rows
from nanoagent_core import store_rules as rules
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import Attempt, Event, ModelCall, RunState, Task
from nanoagent_core.postgres import sql, sql_calls
from nanoagent_core.postgres.connection import Engine, Stmt, Txn

__all__ = [
    "Refusals",
    "attempt_from_row",
    "attempt_statement",
    "aware",
    "call_from_row",
    "call_statement",
    "event_from_row",
    "run_from_row",
    "task_from_row",
    "task_statements",
]

Row = rows.Row


def aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


task_from_row = rows.task_from_row
attempt_from_row = rows.attempt_from_row
call_from_row = rows.call_from_row


def run_from_row(row: Row) -> RunState:
    return rows.run_from_row(row, aware)


def event_from_row(row: Row) -> Event:
    return rows.event_from_row(row, aware)


def task_statements(run_id: str, tasks: Iterable[Task]) -> list[Stmt]:
    """Insert or replace tasks, moving the run's task counters by the difference (counted
    before the rows change, so the cost does not grow with the run's tasks)."""
    params, ids, done = rows.task_upserts(run_id, tasks)
    counts: Stmt = (sql.COUNT_TASK_CHANGES, {"run_id": run_id, "ids": ids, "done": done})
    return [counts, (sql.UPSERT_TASK, params)]


def attempt_statement(run_id: str, attempts: Iterable[Attempt]) -> Stmt:
    """The journal rows of a step."""
    return (sql.INSERT_ATTEMPT, [rules.attempt_params(run_id, a) for a in attempts])


def call_statement(run_id: str, calls: Iterable[ModelCall]) -> Stmt:
    """The planner's and reflector's journal rows of a step (numbered as inserted)."""
    return (sql_calls.INSERT_CALL, [rules.call_params(run_id, c) for c in calls])


class Refusals(Engine):
    """Reads the row a refusal depends on; store_rules words it."""

    async def _fence_failure(self, t: Txn, run_id: str, epoch: int) -> NanoagentError:
        row = await self._one(t, sql.SELECT_EPOCH, {"run_id": run_id})
        return rules.fence_refusal(run_id, None if row is None else row[0], epoch)

    async def _claim_refusal(self, t: Txn, run_id: str, expected_epoch: int) -> NanoagentError:
        row = await self._one(t, sql.SELECT_RUN, {"run_id": run_id})
        run = None if row is None else run_from_row(row)
        return rules.claim_refusal(run_id, run, expected_epoch)

    async def _check_tasks_exist(self, t: Txn, run_id: str, task_ids: list[str]) -> None:
        """ValidationError for a result naming a task the run does not have (the foreign key
        would refuse it too, but without saying which task)."""
        row = await self._one(t, sql.MISSING_TASK, {"run_id": run_id, "task_ids": task_ids})
        if row is not None:
            raise rules.missing_task(run_id, row[0])

    async def _step_refusal(
        self, t: Txn, run_id: str, epoch: int, unknown: list[str], attempts: Iterable[Attempt]
    ) -> NanoagentError | None:
        """Why a step the server refused was refused, if it is ours to say: a stale or
        unknown run, or a result naming a task the run does not have (asked after the
        rollback, outside any transaction)."""
        row = await self._one(t, sql.SELECT_EPOCH, {"run_id": run_id})
        if row is None or row[0] != epoch:
            return await self._fence_failure(t, run_id, epoch)
        if unknown:
            absent = await self._one(t, sql.MISSING_TASK, {"run_id": run_id, "task_ids": unknown})
            if absent is not None:
                return rules.missing_task(run_id, absent[0])
        wanted = list(attempts)
        if wanted:
            taken = await self._one(
                t,
                sql.ATTEMPT_TAKEN,
                {
                    "run_id": run_id,
                    "task_ids": [a.task_id for a in wanted],
                    "attempts": [a.attempt for a in wanted],
                },
            )
            if taken is not None:
                return rules.duplicate_attempt(
                    run_id, next(a for a in wanted if (a.task_id, a.attempt) == tuple(taken))
                )
        return None
