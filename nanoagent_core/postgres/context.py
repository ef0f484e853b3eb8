"""The PostgreSQL store's tasks, results, journal and events: the seed's TaskStore and
ContextStore, the JournalStore and the EventStore of ``PostgresStore`` (a part of it)."""

from __future__ import annotations

import json
from typing import Any

from nanoagent_core import store_rules as rules
from nanoagent_core.errors import DatabaseError
from nanoagent_core.models import Attempt, Event, ModelCall, RunState, Task, check_run_id
from nanoagent_core.postgres import ops, sql, sql_calls
from nanoagent_core.postgres.connection import Txn, encoded, nothing
from nanoagent_core.postgres.ops import Refusals
from nanoagent_core.protocols import NewEvent

__all__ = ["Context"]


class Context(Refusals):
    """Tasks, results, journal and events of ``PostgresStore``."""

    # -- TaskStore and ContextStore ----------------------------------------------------------

    async def save_task(self, run_id: str, task: Task, *, epoch: int) -> None:
        upsert = ops.task_statements(run_id, [task])

        async def txn(t: Txn) -> None:
            if await self._count(t, sql.TOUCH_RUN, {"run_id": run_id, "epoch": epoch}) == 0:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id, statements=upsert)

        await self._write(txn, nothing)

    async def get_all_tasks(self, run_id: str) -> list[Task]:
        async def read(t: Txn) -> list[Task]:
            rows = await self._all(t, sql.SELECT_TASKS, {"run_id": run_id})
            return [ops.task_from_row(row) for row in rows]

        return await self._read(read)

    async def get_pending_tasks(self, run_id: str) -> list[Task]:
        async def read(t: Txn) -> list[Task]:
            rows = await self._all(t, sql.SELECT_PENDING_TASKS, {"run_id": run_id})
            return [ops.task_from_row(row) for row in rows]

        return await self._read(read)

    async def save_result(self, run_id: str, task_id: str, result: str, *, epoch: int) -> None:
        async def txn(t: Txn) -> None:
            if await self._count(t, sql.TOUCH_RUN, {"run_id": run_id, "epoch": epoch}) == 0:
                raise await self._fence_failure(t, run_id, epoch)
            await self._check_tasks_exist(t, run_id, [task_id])
            upsert = {"run_id": run_id, "task_ids": [task_id], "texts": [result]}
            await self._commit(t, run_id, statements=[(sql.UPSERT_RESULTS, upsert)])

        await self._write(txn, nothing)

    async def get_all_results(self, run_id: str) -> dict[str, str]:
        async def read(t: Txn) -> dict[str, str]:
            rows = await self._all(t, sql.SELECT_RESULTS, {"run_id": run_id})
            results: dict[str, str] = dict(rows)
            return results

        return await self._read(read)

    async def get_attempts(self, run_id: str) -> list[Attempt]:
        async def read(t: Txn) -> list[Attempt]:
            rows = await self._all(t, sql.SELECT_ATTEMPTS, {"run_id": run_id})
            return [ops.attempt_from_row(row) for row in rows]

        return await self._read(read)

    async def get_calls(self, run_id: str) -> list[ModelCall]:
        async def read(t: Txn) -> list[ModelCall]:
            rows = await self._all(t, sql_calls.SELECT_CALLS, {"run_id": run_id})
            return [ops.call_from_row(row) for row in rows]

        return await self._read(read)

    async def get_run_detail(self, run_id: str) -> tuple[RunState, list[Task], dict[str, str]]:
        """The run, its tasks and its results, from one snapshot (one round trip)."""
        check_run_id(run_id)

        async def read(t: Txn) -> tuple[RunState, list[Task], dict[str, str]]:
            wanted = {"run_id": run_id}
            run_cur, tasks_cur, results_cur = await self._batch(
                t,
                [
                    (sql.SELECT_RUN, wanted),
                    (sql.SELECT_TASKS, wanted),
                    (sql.SELECT_RESULTS, wanted),
                ],
                commit=True,
            )
            row = await run_cur.fetchone()
            if row is None:
                raise rules.run_not_found(run_id)
            tasks = [ops.task_from_row(r) for r in await tasks_cur.fetchall()]
            results: dict[str, str] = dict(await results_cur.fetchall())
            return ops.run_from_row(row), tasks, results

        return await self._snapshot(read)

    # -- EventStore ------------------------------------------------------------------------

    async def append_event(self, run_id: str, event: NewEvent) -> Event:
        events = encoded([event])

        async def txn(t: Txn) -> Event:
            if await self._one(t, sql.RUN_EXISTS, {"run_id": run_id}) is None:
                raise rules.run_not_found(run_id)
            await self._commit(t, run_id, events)
            return Event.model_construct(
                id=t.last_event_id,
                run_id=run_id,
                ts=t.stamped,
                kind=event.kind,
                data=json.loads(events[0][1]),
            )

        async def recover(xid: str) -> Event:
            async def read(t: Txn) -> Event:
                row = await self._one(
                    t, sql.EVENT_BY_XID, {"run_id": run_id, "xid32": str(int(xid) % 2**32)}
                )
                if row is None:
                    raise DatabaseError(f"{self._location}: committed event not found")
                return ops.event_from_row(row)

            return await self._read(read)

        return await self._write(txn, recover)

    async def read_events(
        self, *, after_id: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[Event]:
        params: dict[str, Any] = {"after_id": after_id, "limit": max(0, limit), "run_id": run_id}
        query = sql.SELECT_EVENTS if run_id is None else sql.SELECT_RUN_EVENTS

        async def read(t: Txn) -> list[Event]:
            return [ops.event_from_row(row) for row in await self._all(t, query, params)]

        return await self._read(read)

    async def last_event_id(self) -> int:
        async def read(t: Txn) -> int:
            row = await self._one(t, sql.LAST_EVENT_ID, {})
            return 0 if row is None else int(row[0])

        return await self._read(read)
