"""The SQLite store: WAL, one ``BEGIN IMMEDIATE`` transaction per write, fenced by epoch.

Every operation is one function run on the connection's own thread (sqlite/thread.py), from
``BEGIN`` to ``COMMIT``, so a transaction never stays open across an ``await``: cancelling the
caller cannot leave a write lock held or a transaction half-applied (the function still
finishes, committing or rolling back, on its thread). Opening and the schema: sqlite/schema.py.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from nanoagent_core import rows
from nanoagent_core import store_rules as rules
from nanoagent_core.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    NotANanoagentDatabaseError,
)
from nanoagent_core.models import (
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    check_run_id,
    utc_now,
)
from nanoagent_core.paths import MEMORY, check_allowed
from nanoagent_core.protocols import NewEvent, PruneCount, Step
from nanoagent_core.sqlite import ops, prune, sql
from nanoagent_core.sqlite.approvals import ApprovalMethods, record_txn
from nanoagent_core.sqlite.context import SQLiteContext
from nanoagent_core.sqlite.queue import SQLiteQueue
from nanoagent_core.sqlite.schema import (
    Synchronous,
    create_private_file,
    in_transaction,
    prepare,
    translate,
    wait_only_on_thread,
    write_now,
)
from nanoagent_core.sqlite.thread import NOT_HERE, ConnectionThread
from nanoagent_core.sqltext import fill

__all__ = ["SQLiteStore", "Synchronous"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = rows.Row


class SQLiteStore(SQLiteQueue, ApprovalMethods, SQLiteContext):
    """A nanoagent database in one SQLite file, shared safely by many processes."""

    def __init__(
        self,
        db: ConnectionThread,
        location: str,
        *,
        read_only: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._location = location
        self._read_only = read_only
        self._clock = clock
        self._closed = False
        #: set (at synchronous NORMAL) when writes run on the caller's thread if they can:
        #: then the connection's busy timeout is 0 but on its own thread, where each call
        #: runs between this statement (the timeout asked for) and one setting it to 0
        self._wait_busy: str | None = None
        self._yielded = 0.0  #: time.monotonic() when a write on the loop's thread last yielded

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        location: str | Path,
        *,
        allowed_dir: str | Path | None = None,
        read_only: bool = False,
        create: bool = True,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
        extra_pragmas: Mapping[str, int | str] | None = None,
    ) -> SQLiteStore:
        """Open (and, unless ``read_only`` or not ``create``, create or migrate) a database.

        Refuses, with a clear message and without writing: a path outside ``allowed_dir``, a
        file that is not SQLite or is corrupt, a SQLite file of another application, and a
        schema newer than this code.
        """
        where = check_allowed(str(location), allowed_dir)
        if synchronous not in ("NORMAL", "FULL"):
            raise DatabaseError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        if where != MEMORY:
            path = Path(where)
            if path.is_dir():
                raise NotANanoagentDatabaseError(f"{where}: is a directory, not a database")
            if not path.exists():
                if read_only or not create:
                    raise DatabaseNotFoundError(f"{where}: no database here")
                create_private_file(path)
        if read_only and where != MEMORY:
            # '?', '#' and '%' in a path are data, not URI syntax: quote them.
            target, uri = f"file:{quote(str(Path(where).resolve()))}?mode=ro", True
        else:
            target, uri = where, False
        db = ConnectionThread()
        try:
            await db.connect(target, uri=uri)
        except sqlite3.Error as exc:
            await db.close()
            raise DatabaseError(f"{where}: cannot open: {exc}") from None
        except BaseException:  # cancelled: the connection opens anyway, on the thread
            await db.close()
            raise
        store = cls(db, where, read_only=read_only, clock=clock)
        try:
            await store._call(
                prepare,
                where,
                read_only,
                synchronous,
                busy_timeout,
                dict(extra_pragmas or {}),
            )
            if not read_only and synchronous == "NORMAL":
                # A write at NORMAL is short (no fsync): it runs on the event loop's thread
                # when it can (see _write); at FULL, each waits for an fsync: off the loop.
                store._wait_busy = await store._call(wait_only_on_thread)
        except BaseException:
            await db.close()
            raise
        logger.debug("%s: opened (%s)", where, "read-only" if read_only else "read-write")
        return store

    @property
    def location(self) -> str:
        return self._location

    @property
    def read_only(self) -> bool:
        return self._read_only

    async def close(self) -> None:
        """Close the connection; later calls raise DatabaseError. Closing twice is fine."""
        if not self._closed:
            self._closed = True
            await self._db.close()

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _guard(self, conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)``, its sqlite3 errors translated."""
        try:
            return fn(conn, *args)
        except sqlite3.Error as exc:
            raise translate(self._location, exc) from None
        except ops.DamagedRowError as exc:
            raise NotANanoagentDatabaseError(
                f"{self._location}: damaged database ({exc})"
            ) from None
        except UnicodeDecodeError as exc:  # damaged text (the schema's, or a row's)
            raise NotANanoagentDatabaseError(
                f"{self._location}: damaged database (text that is not UTF-8: {exc.reason})"
            ) from None

    def _guard_waiting(self, conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
        """``_guard`` with the busy timeout asked for (on the connection's thread)."""
        assert self._wait_busy is not None
        conn.execute(self._wait_busy)
        try:
            return self._guard(conn, fn, *args)
        finally:
            conn.execute(sql.SET_BUSY_TIMEOUT_0)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the connection's thread, translating sqlite3 errors."""
        if self._closed:
            raise DatabaseError(f"{self._location}: the store is closed")
        guard = self._guard if self._wait_busy is None else self._guard_waiting
        return await self._db.run(guard, fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on
        any exception) in one piece: at NORMAL, right here on the event loop's thread when
        the connection's thread is idle and the write lock is free at once (no hop: the
        common case of a worker's step); else in one hop to the connection's thread, which
        waits for the lock (busy timeout). Either way nothing can cut it half-way."""
        if self._read_only:
            raise DatabaseError(f"{self._location}: opened read-only")
        if self._wait_busy is not None and not self._closed:
            out = self._db.run_here(self._guard, write_now, fn, *args)
            if out is not NOT_HERE:
                # Let the loop's other tasks (heartbeat, signals, abort) run, as a hop would,
                # at least every few ms: a worker whose agent never awaits must not hold the
                # loop for a whole run.
                now = time.monotonic()
                if now - self._yielded >= _YIELD_EVERY:
                    self._yielded = now
                    await asyncio.sleep(0)
                return out
        return await self._call(in_transaction, "BEGIN IMMEDIATE", fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one short read transaction (one consistent snapshot)."""
        return await self._call(in_transaction, "BEGIN", fn, *args)

    def _now(self) -> float:
        return self._clock().timestamp()

    # -- RunStore --------------------------------------------------------------------------

    async def create_run(self, run: RunState) -> RunState:
        now = self._now()
        params: dict[str, Any] = {
            **rules.run_params(run),
            "created_at": now,
            "updated_at": now,
            "finished_at": ops.ts(run.finished_at),
            "heartbeat_at": ops.ts(run.heartbeat_at),
            "lease_expires_at": ops.ts(run.lease_expires_at),
            "abort_requested_at": ops.ts(run.abort_requested_at),
        }
        created = rules.created_event(run)

        def txn(conn: sqlite3.Connection) -> RunState:
            if conn.execute(sql.RUN_EXISTS, (run.run_id,)).fetchone():
                raise rules.run_exists(run.run_id)
            conn.execute(sql.INSERT_RUN, params)
            conn.executemany(sql.INSERT_EVENT, ops.event_params(run.run_id, now, [created]))
            return ops.run_from_row(conn.execute(sql.SELECT_RUN, (run.run_id,)).fetchone())

        return await self._write(txn)

    async def get_run(self, run_id: str) -> RunState:
        check_run_id(run_id)

        def read(conn: sqlite3.Connection) -> RunState:
            row = conn.execute(sql.SELECT_RUN, (run_id,)).fetchone()
            if row is None:
                raise rules.run_not_found(run_id)
            return ops.run_from_row(row)

        return await self._call(read)

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunState]:
        """The runs that exist among ``run_ids`` (unknown ids are skipped), in one snapshot."""

        def read(conn: sqlite3.Connection) -> list[RunState]:
            rows = (conn.execute(sql.SELECT_RUN, (run_id,)).fetchone() for run_id in run_ids)
            return [ops.run_from_row(row) for row in rows if row is not None]

        return await self._read(read)

    async def list_runs(
        self,
        *,
        statuses: Sequence[RunStatus] | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunState]:
        clauses: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            if not statuses:
                return []
            clauses.append(fill(sql.WHERE_STATUS_IN, marks=", ".join("?" * len(statuses))))
            params.extend(RunStatus(status).value for status in statuses)
        if text:
            clauses.append(sql.WHERE_TEXT)
            params.extend([rules.like_pattern(text)] * 2)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = fill(sql.LIST_RUNS, where=where)
        params.extend([max(0, limit), max(0, offset)])

        def read(conn: sqlite3.Connection) -> list[RunState]:
            return [ops.run_from_row(row) for row in conn.execute(query, params)]

        return await self._call(read)

    async def count_runs(self) -> dict[RunStatus, int]:
        def read(conn: sqlite3.Connection) -> dict[RunStatus, int]:
            return dict(ops.count_from_row(row) for row in conn.execute(sql.COUNT_RUNS))

        return await self._call(read)

    async def update_loop_state(
        self,
        run_id: str,
        *,
        epoch: int,
        phase: Phase,
        iteration: int,
        current_task_id: str | None,
    ) -> RunState:
        now = self._now()

        def txn(conn: sqlite3.Connection) -> RunState:
            cur = conn.execute(
                sql.UPDATE_POSITION,
                (Phase(phase).value, iteration, current_task_id, now, run_id, epoch),
            )
            if cur.rowcount == 0:
                raise ops.fence_failure(conn, run_id, epoch)
            return ops.run_from_row(conn.execute(sql.SELECT_RUN, (run_id,)).fetchone())

        return await self._write(txn)

    # -- LeaseStore ------------------------------------------------------------------------

    async def claim_run(
        self,
        run_id: str,
        owner: Owner,
        *,
        expected_epoch: int,
        lease_seconds: float,
        owner_gone: bool = False,
    ) -> RunState:
        check_run_id(run_id)
        now = self._now()
        params = {
            "run_id": run_id,
            **rules.owner_params(owner),
            "now": now,
            "lease": now + lease_seconds,
            "expected_epoch": expected_epoch,
            "owner_gone": owner_gone,
        }

        def txn(conn: sqlite3.Connection) -> RunState:
            row = conn.execute(sql.CLAIM_RUN, params).fetchone()
            if row is None:
                raise ops.claim_refusal(conn, run_id, expected_epoch)
            claimed = ops.run_from_row(row)
            event = rules.claimed_event(claimed, owner)
            conn.executemany(sql.INSERT_EVENT, ops.event_params(run_id, now, [event]))
            return claimed

        return await self._write(txn)

    async def renew_lease(self, run_id: str, *, epoch: int, lease_seconds: float) -> RunState:
        now = self._now()
        params = {"run_id": run_id, "epoch": epoch, "now": now, "lease": now + lease_seconds}

        def txn(conn: sqlite3.Connection) -> RunState:
            row = conn.execute(sql.RENEW_LEASE, params).fetchone()
            if row is None:
                raise ops.fence_failure(conn, run_id, epoch)
            return ops.run_from_row(row)

        return await self._write(txn)

    async def request_abort(self, run_id: str) -> RunState:
        check_run_id(run_id)
        now = self._now()
        event = NewEvent(kind=EventKind.ABORT_REQUESTED)

        def txn(conn: sqlite3.Connection) -> RunState:
            changed = conn.execute(sql.REQUEST_ABORT, {"run_id": run_id, "now": now}).rowcount
            row = conn.execute(sql.SELECT_RUN, (run_id,)).fetchone()
            if row is None:
                raise rules.run_not_found(run_id)
            run = ops.run_from_row(row)
            if run.status.finished:
                raise rules.run_finished(run)
            if changed:
                conn.executemany(sql.INSERT_EVENT, ops.event_params(run_id, now, [event]))
            return run

        return await self._write(txn)

    async def abort_unowned(self, run_id: str, *, expected_epoch: int, reason: str) -> RunState:
        check_run_id(run_id)
        now = self._now()
        params = {"run_id": run_id, "expected_epoch": expected_epoch, "now": now, "reason": reason}

        def txn(conn: sqlite3.Connection) -> RunState:
            row = conn.execute(sql.ABORT_UNOWNED, params).fetchone()
            if row is None:
                raise ops.claim_refusal(conn, run_id, expected_epoch)
            run = ops.run_from_row(row)
            event = rules.aborted_event(run, reason)
            conn.executemany(sql.INSERT_EVENT, ops.event_params(run_id, now, [event]))
            return run

        return await self._write(txn)

    async def set_budget(
        self, run_id: str, *, epoch: int, max_tokens: int | None, max_cost_usd: float | None
    ) -> RunState:
        check_run_id(run_id)
        params = rules.budget_params(run_id, epoch, max_tokens, max_cost_usd)
        params["now"] = self._now()
        event = rules.budget_event(params)

        def txn(conn: sqlite3.Connection) -> RunState:
            row = conn.execute(sql.SET_BUDGET, params).fetchone()
            if row is None:
                raise ops.fence_failure(conn, run_id, epoch)
            conn.executemany(sql.INSERT_EVENT, ops.event_params(run_id, params["now"], [event]))
            return ops.run_from_row(row)

        return await self._write(txn)

    # -- StepStore -------------------------------------------------------------------------

    async def commit_step(self, run_id: str, step: Step, *, epoch: int) -> RunState:
        now = self._now()
        params = {**rules.step_params(run_id, step, epoch), "now": now}
        tasks = step.tasks
        task_ids = {task.id for task in tasks}
        results = [(run_id, task_id, text) for task_id, text in step.results.items()]
        events = ops.event_params(run_id, now, step.events)
        attempts = step.attempts
        approval = step.approval

        def txn(conn: sqlite3.Connection) -> RunState:
            changes = ops.task_changes(conn, run_id, tasks) if tasks else ops.NO_TASK_CHANGES
            # The run row first: fenced (the write lock is held, so the epoch cannot move
            # before COMMIT), so a stale or unknown run is reported as such, whatever else
            # the step holds; it moves the task counters by what the lookups above found,
            # and nothing after it changes the row it returns.
            params["tasks_added"], params["tasks_done"] = changes.added, changes.done
            row = conn.execute(sql.FINISH_STEP, params).fetchone()
            if row is None:
                raise ops.fence_failure(conn, run_id, epoch)
            ops.write_tasks(conn, changes)
            if results:
                # a task upserted just above exists: look up only the others
                others = [task_id for _, task_id, _ in results if task_id not in task_ids]
                ops.check_tasks_exist(conn, run_id, others)
                conn.executemany(sql.UPSERT_RESULT, results)
            if attempts:
                ops.insert_attempts(conn, run_id, attempts)
            if step.calls:
                ops.insert_calls(conn, run_id, step.calls)
            if approval is not None:
                record_txn(conn, approval, now)
            if events:
                conn.executemany(sql.INSERT_EVENT, events)
            return ops.run_from_row(row)

        return await self._write(txn)

    # -- PruneStore ------------------------------------------------------------------------

    async def delete_finished_runs(
        self,
        *,
        statuses: Sequence[RunStatus],
        older_than: timedelta,
        keep_last: int = 0,
        limit: int = 500,
    ) -> PruneCount:
        if self._read_only:
            raise DatabaseError(f"{self._location}: opened read-only")
        params = prune.params(statuses, older_than, keep_last, limit, self._now())
        return await self._call(prune.delete_batch, params, keep_last)

    async def count_finished_runs(
        self, *, statuses: Sequence[RunStatus], older_than: timedelta, keep_last: int = 0
    ) -> PruneCount:
        params = prune.params(statuses, older_than, keep_last, 1, self._now())
        return await self._read(prune.count, params, keep_last)

    async def reclaim_space(self, *, vacuum: bool = False) -> str:
        """See :func:`prune.reclaim_space`."""
        if self._read_only:
            raise DatabaseError(f"{self._location}: opened read-only")
        return await self._call(prune.reclaim_space, vacuum)


#: At most this long (seconds) between two yields to the event loop by writes run on its
#: thread (a yield costs a turn of the loop, about as much as a small statement).
_YIELD_EVERY = 0.002

#: Pages one incremental-vacuum step frees (4 MiB at 4 KiB pages): its write lock stays short.
_VACUUM_STEP = 1024
