"""The SQLite store's tasks, results, events and journal: the seed's TaskStore and
ContextStore, the EventStore, the JournalStore and the ChangeWatch of
:class:`nanoagent_core.sqlite.store.SQLiteStore` (a base class). Each method is one function
run on the connection's thread, in one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from nanoagent_core import store_rules as rules
from nanoagent_core.models import Attempt, Event, ModelCall, RunState, Task, check_run_id
from nanoagent_core.protocols import NewEvent
from nanoagent_core.sqlite import ops, sql, sql_calls

__all__ = ["SQLiteContext"]

T = TypeVar("T")


class SQLiteContext:
    """Tasks, results, events and journal of :class:`SQLiteStore` (a base class)."""

    if TYPE_CHECKING:

        async def _write(self, fn: Callable[..., T], *args: Any) -> T: ...

        async def _read(self, fn: Callable[..., T], *args: Any) -> T: ...

        async def _call(self, fn: Callable[..., T], *args: Any) -> T: ...

        def _now(self) -> float: ...

    # -- TaskStore and ContextStore ----------------------------------------------------------

    async def save_task(self, run_id: str, task: Task, *, epoch: int) -> None:
        now = self._now()

        def txn(conn: sqlite3.Connection) -> None:
            if conn.execute(sql.TOUCH_RUN, (now, run_id, epoch)).rowcount == 0:
                raise ops.fence_failure(conn, run_id, epoch)
            ops.upsert_tasks(conn, run_id, [task])

        await self._write(txn)

    async def get_all_tasks(self, run_id: str) -> list[Task]:
        def read(conn: sqlite3.Connection) -> list[Task]:
            return [ops.task_from_row(row) for row in conn.execute(sql.SELECT_TASKS, (run_id,))]

        return await self._call(read)

    async def get_pending_tasks(self, run_id: str) -> list[Task]:
        def read(conn: sqlite3.Connection) -> list[Task]:
            rows = conn.execute(sql.SELECT_PENDING_TASKS, (run_id,))
            return [ops.task_from_row(row) for row in rows]

        return await self._call(read)

    async def save_result(self, run_id: str, task_id: str, result: str, *, epoch: int) -> None:
        now = self._now()

        def txn(conn: sqlite3.Connection) -> None:
            if conn.execute(sql.TOUCH_RUN, (now, run_id, epoch)).rowcount == 0:
                raise ops.fence_failure(conn, run_id, epoch)
            ops.check_tasks_exist(conn, run_id, [task_id])
            conn.execute(sql.UPSERT_RESULT, (run_id, task_id, result))

        await self._write(txn)

    async def get_all_results(self, run_id: str) -> dict[str, str]:
        def read(conn: sqlite3.Connection) -> dict[str, str]:
            return dict(
                ops.result_from_row(row) for row in conn.execute(sql.SELECT_RESULTS, (run_id,))
            )

        return await self._call(read)

    async def get_run_detail(self, run_id: str) -> tuple[RunState, list[Task], dict[str, str]]:
        """The run, its tasks and its results, from one snapshot."""
        check_run_id(run_id)

        def read(conn: sqlite3.Connection) -> tuple[RunState, list[Task], dict[str, str]]:
            row = conn.execute(sql.SELECT_RUN, (run_id,)).fetchone()
            if row is None:
                raise rules.run_not_found(run_id)
            task_rows = conn.execute(sql.SELECT_TASKS, (run_id,))
            tasks = [ops.task_from_row(r) for r in task_rows]
            results = dict(
                ops.result_from_row(r) for r in conn.execute(sql.SELECT_RESULTS, (run_id,))
            )
            return ops.run_from_row(row), tasks, results

        return await self._read(read)

    # -- EventStore ------------------------------------------------------------------------

    async def append_event(self, run_id: str, event: NewEvent) -> Event:
        now = self._now()
        data = rules.event_json(event)

        def txn(conn: sqlite3.Connection) -> Event:
            if not conn.execute(sql.RUN_EXISTS, (run_id,)).fetchone():
                raise rules.run_not_found(run_id)
            (event_id,) = conn.execute(
                sql.INSERT_EVENT_RETURNING, (run_id, now, event.kind, data)
            ).fetchone()
            return Event.model_construct(
                id=event_id, run_id=run_id, ts=ops.dt(now), kind=event.kind, data=json.loads(data)
            )

        return await self._write(txn)

    async def read_events(
        self, *, after_id: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[Event]:
        def read(conn: sqlite3.Connection) -> list[Event]:
            if run_id is None:
                rows = conn.execute(sql.SELECT_EVENTS, (after_id, max(0, limit)))
            else:
                rows = conn.execute(sql.SELECT_RUN_EVENTS, (run_id, after_id, max(0, limit)))
            return [ops.event_from_row(row) for row in rows]

        return await self._call(read)

    async def last_event_id(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql.LAST_EVENT_ID).fetchone()[0])

        return await self._call(read)

    # -- JournalStore ----------------------------------------------------------------------

    async def get_attempts(self, run_id: str) -> list[Attempt]:
        def read(conn: sqlite3.Connection) -> list[Attempt]:
            rows = conn.execute(sql.SELECT_ATTEMPTS, (run_id,))
            return [ops.attempt_from_row(row) for row in rows]

        return await self._read(read)

    async def get_calls(self, run_id: str) -> list[ModelCall]:
        def read(conn: sqlite3.Connection) -> list[ModelCall]:
            rows = conn.execute(sql_calls.SELECT_CALLS, (run_id,))
            return [ops.call_from_row(row) for row in rows]

        return await self._read(read)

    # -- ChangeWatch -----------------------------------------------------------------------

    @property
    def pushes_changes(self) -> bool:
        """False: each :meth:`change_token` is a ``PRAGMA data_version`` (a poll)."""
        return False

    async def change_token(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql.DATA_VERSION).fetchone()[0])

        return await self._call(read)
