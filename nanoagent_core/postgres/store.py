"""The PostgreSQL store: runs shared by workers and dashboards on several machines.

* One schema of its own (``nanoagent``, or ``?schema=NAME`` in the URL), versioned by
  numbered migrations applied under an advisory lock; a newer schema is refused unwritten.
* Every write is one transaction on a pooled connection (psycopg 3, psycopg_pool), fenced
  by the run's epoch; a step takes two round trips: its statements (prepared, in pipeline
  mode), then one message holding the statement that allocates event ids under the lock of
  the ``counters`` row and notifies listeners, and COMMIT (sql.py says why ids are
  gap-free).
* Leases are judged by the database's clock: claims and renewals compute expiry in SQL.
* A lost connection is retried within ``retry_seconds``: before COMMIT nothing was written,
  so the transaction runs again; a COMMIT whose answer was lost is settled by asking the
  server for the transaction's status (``pg_xact_status``), never by guessing.
* ``change_token()`` counts notifications received by a background listener connection;
  while that connection is down it polls the change counter and reconnects by itself.
  ``connected`` says whether the database is reachable right now.

The parts: location.py (URLs), opening.py (open), schema.py (migrations), connection.py
(transactions and retries), listener.py (LISTEN), ops.py (rows, refusals); this module
keeps the domain methods.

psycopg is imported when a store is opened, not with this module, so that commands working
on a SQLite file do not pay for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from nanoagent_core import rows
from nanoagent_core import store_rules as rules
from nanoagent_core.models import (
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    check_run_id,
    utc_now,
)
from nanoagent_core.postgres import sql, sql_queue
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqltext import fill

if TYPE_CHECKING:
    from psycopg import AsyncCursor
from nanoagent_core.postgres import ops
from nanoagent_core.postgres.approvals import ApprovalMethods, record_statements
from nanoagent_core.postgres.connection import (
    Stmt,
    Txn,
    abandon,
    encoded,
    retryable_state,
)
from nanoagent_core.postgres.context import Context
from nanoagent_core.postgres.listener import Watched
from nanoagent_core.postgres.location import (
    DEFAULT_SCHEMA,
    is_postgres_location,
    split_location,
)
from nanoagent_core.postgres.opening import connect
from nanoagent_core.postgres.prune import Pruning
from nanoagent_core.postgres.queue import PostgresQueue

__all__ = ["DEFAULT_SCHEMA", "PostgresStore", "is_postgres_location", "split_location"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = rows.Row
if TYPE_CHECKING:
    Cursor: TypeAlias = AsyncCursor[Row]


class PostgresStore(PostgresQueue, Watched, Context, Pruning, ApprovalMethods):
    """A nanoagent database in one schema of a PostgreSQL database, shared by many hosts.
    Made by :meth:`open` (the constructor takes what connection.Engine and
    listener.Watched keep)."""

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        location: str,
        *,
        schema: str | None = None,
        read_only: bool = False,
        create: bool = True,
        clock: Callable[[], datetime] | None = None,
        retry_seconds: float = 15.0,
        connect_timeout: float = 5.0,
        pool_size: int = 4,
        idle_in_transaction_timeout: float = 5.0,
    ) -> PostgresStore:
        """Connect to ``location`` (a ``postgresql://`` URL; ``?schema=NAME`` picks the
        schema) and, unless ``read_only`` or not ``create``, create or migrate the schema.

        Refuses, with one line and without writing: an unreachable server, a schema of
        that name holding tables that are not nanoagent's, and a schema newer than this code.
        ``clock`` (tests only) replaces the database's clock for every time it stamps.
        """
        opened = await connect(
            location,
            schema=schema,
            read_only=read_only,
            create=create,
            retry_seconds=retry_seconds,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
            idle_in_transaction_timeout=idle_in_transaction_timeout,
        )
        return cls(
            opened.pool,
            conninfo=opened.conninfo,
            kwargs=opened.kwargs,
            location=opened.shown_at,
            schema=opened.schema,
            read_only=read_only,
            clock=clock,
            retry_seconds=retry_seconds,
            connect_timeout=connect_timeout,
        )

    @property
    def location(self) -> str:
        """The URL (password masked) and schema, for messages and headers."""
        return self._location

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def read_only(self) -> bool:
        return self._read_only

    async def close(self) -> None:
        """Close the pool and the listener; later calls raise DatabaseError. Closing twice
        is fine."""
        self._closed = True
        await self._stop_listening()
        await self._stop_queue_listener()
        await self._pool.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- RunStore --------------------------------------------------------------------------

    async def create_run(self, run: RunState) -> RunState:
        lease: timedelta | None = None
        if run.lease_expires_at is not None:
            # The creator's clock is not the database's: keep the lease's length, not its end.
            reading = self._clock() if self._clock is not None else utc_now()
            lease = run.lease_expires_at - reading
        params: dict[str, Any] = {
            **rules.run_params(run),
            "finished_at": run.finished_at,
            "heartbeat_at": run.heartbeat_at,
            "lease": lease,
            "abort_requested_at": run.abort_requested_at,
        }
        events = encoded([rules.created_event(run)])
        wake: list[Stmt] = []
        if run.status is RunStatus.QUEUED:  # idle pool workers on every host hear of it
            wake.append(
                (
                    sql_queue.NOTIFY_QUEUE,
                    {"queue": sql_queue.queue_channel(self._schema), "run_id": run.run_id},
                )
            )

        async def txn(t: Txn) -> RunState:
            row = await self._one(t, sql.INSERT_RUN, params)
            if row is None:
                raise rules.run_exists(run.run_id)
            await self._commit(t, run.run_id, events, wake)
            return ops.run_from_row(row)

        return await self._write(txn, self._reread(run.run_id))

    async def get_run(self, run_id: str) -> RunState:
        check_run_id(run_id)

        async def read(t: Txn) -> RunState:
            row = await self._one(t, sql.SELECT_RUN, {"run_id": run_id})
            if row is None:
                raise rules.run_not_found(run_id)
            return ops.run_from_row(row)

        return await self._read(read)

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunState]:
        """The runs that exist among ``run_ids`` (unknown ids are skipped), in one snapshot."""
        wanted = list(run_ids)

        async def read(t: Txn) -> list[RunState]:
            rows = await self._all(t, sql.SELECT_RUNS, {"run_ids": wanted})
            return [ops.run_from_row(row) for row in rows]

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
        params: dict[str, Any] = {"limit": max(0, limit), "offset": max(0, offset)}
        if statuses is not None:
            if not statuses:
                return []
            clauses.append(sql.WHERE_STATUS_IN)
            params["statuses"] = [RunStatus(status).value for status in statuses]
        if text:
            clauses.append(sql.WHERE_TEXT)
            params["pattern"] = rules.like_pattern(text)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = fill(sql.LIST_RUNS, where=where)

        async def read(t: Txn) -> list[RunState]:
            return [ops.run_from_row(row) for row in await self._all(t, query, params)]

        return await self._read(read)

    async def count_runs(self) -> dict[RunStatus, int]:
        async def read(t: Txn) -> dict[RunStatus, int]:
            rows = await self._all(t, sql.COUNT_RUNS, {})
            return {RunStatus(status): int(n) for status, n in rows}

        return await self._read(read)

    async def update_loop_state(
        self,
        run_id: str,
        *,
        epoch: int,
        phase: Phase,
        iteration: int,
        current_task_id: str | None,
    ) -> RunState:
        params = {
            "run_id": run_id,
            "epoch": epoch,
            "phase": Phase(phase).value,
            "iteration": iteration,
            "current_task_id": current_task_id,
        }

        async def txn(t: Txn) -> RunState:
            row = await self._one(t, sql.UPDATE_POSITION, params)
            if row is None:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id)
            return ops.run_from_row(row)

        return await self._write(txn, self._reread(run_id))

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
        params = {
            "run_id": run_id,
            **rules.owner_params(owner),
            "lease": timedelta(seconds=lease_seconds),
            "expected_epoch": expected_epoch,
            "owner_gone": owner_gone,
        }

        async def txn(t: Txn) -> RunState:
            row = await self._one(t, sql.CLAIM_RUN, params)
            if row is None:
                raise await self._claim_refusal(t, run_id, expected_epoch)
            claimed = ops.run_from_row(row)
            await self._commit(t, run_id, encoded([rules.claimed_event(claimed, owner)]))
            return claimed

        return await self._write(txn, self._reread(run_id))

    async def renew_lease(self, run_id: str, *, epoch: int, lease_seconds: float) -> RunState:
        params = {"run_id": run_id, "epoch": epoch, "lease": timedelta(seconds=lease_seconds)}

        async def txn(t: Txn) -> RunState:
            row = await self._one(t, sql.RENEW_LEASE, params)
            if row is None:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id)
            return ops.run_from_row(row)

        return await self._write(txn, self._reread(run_id))

    async def request_abort(self, run_id: str) -> RunState:
        check_run_id(run_id)
        events = encoded([NewEvent(kind=EventKind.ABORT_REQUESTED)])

        async def txn(t: Txn) -> RunState:
            wanted = {"run_id": run_id}
            update, read = await self._batch(
                t, [(sql.REQUEST_ABORT, wanted), (sql.SELECT_RUN, wanted)]
            )
            row = await read.fetchone()
            if row is None:
                raise rules.run_not_found(run_id)
            run = ops.run_from_row(row)
            if run.status.finished:
                raise rules.run_finished(run)
            if update.rowcount:
                await self._commit(t, run_id, events)
            return run

        return await self._write(txn, self._reread(run_id))

    async def abort_unowned(self, run_id: str, *, expected_epoch: int, reason: str) -> RunState:
        check_run_id(run_id)
        params = {"run_id": run_id, "expected_epoch": expected_epoch, "reason": reason}

        async def txn(t: Txn) -> RunState:
            row = await self._one(t, sql.ABORT_UNOWNED, params)
            if row is None:
                raise await self._claim_refusal(t, run_id, expected_epoch)
            run = ops.run_from_row(row)
            await self._commit(t, run_id, encoded([rules.aborted_event(run, reason)]))
            return run

        return await self._write(txn, self._reread(run_id))

    async def set_budget(
        self, run_id: str, *, epoch: int, max_tokens: int | None, max_cost_usd: float | None
    ) -> RunState:
        check_run_id(run_id)
        params = rules.budget_params(run_id, epoch, max_tokens, max_cost_usd)
        events = encoded([rules.budget_event(params)])

        async def txn(t: Txn) -> RunState:
            row = await self._one(t, sql.SET_BUDGET, params)
            if row is None:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id, events)
            return ops.run_from_row(row)

        return await self._write(txn, self._reread(run_id))

    # -- StepStore -------------------------------------------------------------------------

    async def commit_step(self, run_id: str, step: Step, *, epoch: int) -> RunState:
        """Two round trips. First, in one pipeline of prepared statements: the fence (the
        run row locked until COMMIT), the tasks, the results and the new position. Then the
        event ids and COMMIT (see :meth:`_commit`). A stale or unknown run, or a result
        naming a task the run does not have, rolls everything back and says so."""
        params = rules.step_params(run_id, step, epoch)
        carried = {task.id for task in step.tasks}
        named = [*step.results, *(a.task_id for a in step.attempts)]
        unknown = [task_id for task_id in dict.fromkeys(named) if task_id not in carried]
        statements: list[Stmt] = [(sql.LOCK_EPOCH, {"run_id": run_id})]
        if step.tasks:
            statements += ops.task_statements(run_id, step.tasks)
        if step.results:
            result_ids = list(step.results)
            texts = [step.results[task_id] for task_id in result_ids]
            statements.append(
                (sql.UPSERT_RESULTS, {"run_id": run_id, "task_ids": result_ids, "texts": texts})
            )
        if step.attempts:
            statements.append(ops.attempt_statement(run_id, step.attempts))
        if step.calls:
            statements.append(ops.call_statement(run_id, step.calls))
        if step.approval is not None:
            statements += record_statements(step.approval)
        statements.append((sql.FINISH_STEP, params))
        events = encoded(step.events)

        async def txn(t: Txn) -> RunState:
            import psycopg

            try:
                fence, *_, finish = await self._batch(t, statements)
            except psycopg.Error:
                if retryable_state(t.conn):
                    raise
                # Refused by the server (a foreign key, bad data): say why in our terms.
                await abandon(t.conn)
                refusal = await self._step_refusal(t, run_id, epoch, unknown, step.attempts)
                if refusal is not None:
                    raise refusal from None
                raise
            row = await fence.fetchone()
            finished = await finish.fetchone()
            if row is None or row[0] != epoch or finished is None:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id, events)
            return ops.run_from_row(finished)

        return await self._write(txn, self._reread(run_id))

    def _reread(self, run_id: str) -> Callable[[str], Awaitable[RunState]]:
        """What a write whose COMMIT landed (answer lost) returns: the run as it now is."""

        async def recover(xid: str) -> RunState:
            return await self.get_run(run_id)

        return recover
