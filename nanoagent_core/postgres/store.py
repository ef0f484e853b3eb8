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

psycopg is imported when a store is opened, not with this module, so that commands working
on a SQLite file do not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, LiteralString, TypeAlias, TypeVar, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from nanoagent_core import rows
from nanoagent_core.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    LeaseLostError,
    NanoagentError,
    NotANanoagentDatabaseError,
    RunBusyError,
    RunExistsError,
    RunFinishedError,
    RunNotFoundError,
    SchemaTooNewError,
    ValidationError,
)
from nanoagent_core.models import (
    Event,
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    check_run_id,
    utc_now,
)
from nanoagent_core.paths import check_postgres_location, display_location
from nanoagent_core.postgres import sql
from nanoagent_core.protocols import NewEvent, Step

if TYPE_CHECKING:
    from psycopg import AsyncConnection, AsyncCursor
    from psycopg_pool import AsyncConnectionPool

__all__ = ["DEFAULT_SCHEMA", "PostgresStore", "is_postgres_location", "split_location"]

DEFAULT_SCHEMA = "nanoagent"

T = TypeVar("T")
Row = rows.Row
if TYPE_CHECKING:
    Cursor: TypeAlias = AsyncCursor[Row]

#: SQLSTATEs after which the transaction was rolled back and may simply run again.
_RETRY_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "25P03"})


def is_postgres_location(location: str) -> bool:
    return location.startswith(("postgres://", "postgresql://"))


def split_location(location: str) -> tuple[str, str, str]:
    """``(conninfo, schema, shown)`` of a ``postgresql://`` URL: the URL for libpq without
    our own ``schema`` parameter, the schema, and the URL to show (password masked).
    A malformed URL is a ValidationError (exit 2) that shows it masked."""
    parts = urlsplit(check_postgres_location(location))
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not sql.SCHEMA_NAME.fullmatch(schema):
        raise DatabaseError(
            f"schema {schema[:80]!r}: use 1-48 characters of a-z, 0-9 and '_', not starting"
            " with a digit"
        )
    if schemas:
        rest = [(key, value) for key, value in query if key != "schema"]
        conninfo = urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
    else:
        conninfo = location
    return conninfo, schema, display_location(location)


def _one_line(exc: BaseException) -> str:
    """A psycopg error as one short line (no LINE/HINT/traceback)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def _query(text: str) -> LiteralString:
    """Mark SQL as safe to execute: every statement comes from sql.py, rendered with a
    validated schema name; values always travel as parameters."""
    return cast(LiteralString, text)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


_DamagedRowError = rows.DamagedRowError
_task_from_row = rows.task_from_row


def _run_from_row(row: Row) -> RunState:
    return rows.run_from_row(row, _aware)


def _event_from_row(row: Row) -> Event:
    return rows.event_from_row(row, _aware)


def _event_data(event: NewEvent) -> str:
    try:
        return json.dumps(event.data)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"event {event.kind!r}: data is not JSON ({exc})") from None


def _encoded(events: Iterable[NewEvent]) -> list[tuple[str, str]]:
    """``(kind, json)`` of each event; raises ValidationError before anything is written."""
    return [(event.kind, _event_data(event)) for event in events]


class _Retry(Exception):
    """The attempt failed in a way that wrote nothing; the transaction may run again."""


class _Landed(Exception):
    """The COMMIT's answer was lost with the connection, but the server says it committed."""

    def __init__(self, xid: str) -> None:
        super().__init__(xid)
        self.xid = xid


async def _nothing(xid: str) -> None:
    """The answer of a write that returns nothing, when its COMMIT's answer was lost."""


@dataclass
class _Txn:
    """One transaction: its connection, the clock reading it uses, what is still to be sent
    with its first batch (BEGIN, the query of its id), its id, and how far COMMIT got."""

    conn: AsyncConnection[Row]
    now: datetime | None
    prelude: list[LiteralString] = field(default_factory=list[LiteralString])
    xid_cur: Cursor | None = None
    xid: str | None = None
    commit_sent: bool = False
    committed: bool = False
    last_event_id: int = 0
    stamped: datetime | None = None


#: A statement of a batch: its SQL (a sql.py template) and its parameters; a list of
#: parameter sets runs it once per set (executemany).
_Stmt = tuple[str, "dict[str, Any] | list[dict[str, Any]]"]


def _task_statements(run_id: str, tasks: Iterable[Task]) -> list[_Stmt]:
    """Insert or replace tasks, moving the run's task counters by the difference (counted
    before the rows change, so the cost does not grow with the run's tasks)."""
    params, ids, done = rows.task_upserts(run_id, tasks)
    counts: _Stmt = (sql.COUNT_TASK_CHANGES, {"run_id": run_id, "ids": ids, "done": done})
    return [counts, (sql.UPSERT_TASK, params)]


class _Listener:
    """A connection of its own that LISTENs on the schema's channel and counts what it hears.

    Reconnects by itself (0.1 s doubling to 2 s); pings the server every ``ping`` seconds so
    that a silently dead connection is noticed. Each (re)connection also counts as a change:
    whatever happened while nobody was listening is then picked up by a refresh.
    """

    def __init__(
        self,
        conninfo: str,
        kwargs: dict[str, Any],
        channel: str,
        *,
        connect_timeout: float,
        ping: float,
    ) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._channel = channel
        self._connect_timeout = connect_timeout
        self._ping = ping
        self.token = 0
        self.connected = False
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected = False

    async def _run(self) -> None:
        import psycopg

        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
            except psycopg.Error:
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)
                continue
            try:
                await conn.execute(_query(f'LISTEN "{self._channel}"'))
                self.connected = True
                self.token += 1
                self.ready.set()
                delay = 0.1
                while True:
                    async for _ in conn.notifies(timeout=self._ping):
                        self.token += 1
                    await asyncio.wait_for(conn.execute("SELECT 1"), self._connect_timeout)
            except (psycopg.Error, TimeoutError):
                pass
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await conn.close()
            await asyncio.sleep(delay)
            delay = min(2 * delay, 2.0)


class PostgresStore:
    """A nanoagent database in one schema of a PostgreSQL database, shared by many hosts."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Row]],
        *,
        conninfo: str,
        kwargs: dict[str, Any],
        location: str,
        schema: str,
        read_only: bool,
        clock: Callable[[], datetime] | None,
        retry_seconds: float,
        connect_timeout: float,
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._location = location
        self._schema = schema
        self._channel = sql.channel(schema)
        self._read_only = read_only
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._connect_timeout = connect_timeout
        self._rendered: dict[str, LiteralString] = {}
        self._healthy = True
        self._listener: _Listener | None = None
        self._closed = False
        self._polled: int | None = None

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
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        _quiet_driver_logs()
        conninfo, url_schema, shown = split_location(location)
        schema = schema or url_schema
        if not sql.SCHEMA_NAME.fullmatch(schema):
            raise DatabaseError(f"bad schema name {schema[:80]!r}")
        shown_at = shown if schema == url_schema else f"{shown} (schema {schema})"
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(2, round(connect_timeout)),
        }
        if "application_name" not in conninfo:
            kwargs["application_name"] = f"nanoagent/{os.getpid()}"  # for pg_stat_activity
        store_sql = functools.partial(sql.render, schema=schema)
        # A server that cannot be reached is reported at once; one that was reached but whose
        # session broke midway (terminated, restarting) is tried again within retry_seconds,
        # as every operation is (the schema work is one transaction: nothing half-done).
        deadline = time.monotonic() + retry_seconds
        delay = 0.05
        reached = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                if not reached or time.monotonic() + delay > deadline:
                    raise DatabaseError(f"{shown_at}: cannot connect: {_one_line(exc)}") from None
            else:
                reached = True
                try:
                    await _prepare(conn, store_sql, shown_at, schema, read_only, create)
                    break
                except psycopg.Error as exc:
                    if not _retryable(exc, conn) or time.monotonic() + delay > deadline:
                        raise DatabaseError(f"{shown_at}: {_one_line(exc)}") from None
                finally:
                    await conn.close()
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)

        configure_sql = sql.CONFIGURE_SESSION.format(
            idle_ms=max(0, round(idle_in_transaction_timeout * 1000))
        )

        async def configure(new: AsyncConnection[Row]) -> None:
            await new.execute(_query(configure_sql))

        pool: AsyncConnectionPool[AsyncConnection[Row]] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            kwargs=kwargs,
            configure=configure,
            timeout=connect_timeout,
            reconnect_timeout=2.0,  # then a new attempt at the next demand: no long back-off
            name=f"nanoagent:{schema}",
        )
        await pool.open(wait=False)
        return cls(
            pool,
            conninfo=conninfo,
            kwargs=kwargs,
            location=shown_at,
            schema=schema,
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

    @property
    def connected(self) -> bool:
        """False while the database cannot be reached (what a dashboard shows as
        "disconnected"): neither the listener is connected nor did the last query get through.
        """
        return self.listening or self._healthy

    @property
    def listening(self) -> bool:
        """True while changes are pushed (the listener is connected); False before the first
        :meth:`change_token` and while :meth:`change_token` falls back to polling."""
        return self._listener is not None and self._listener.connected

    async def close(self) -> None:
        """Close the pool and the listener; later calls raise DatabaseError. Closing twice
        is fine."""
        self._closed = True
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        await self._pool.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _q(self, template: str) -> LiteralString:
        try:
            return self._rendered[template]
        except KeyError:
            rendered = self._rendered[template] = _query(sql.render(template, self._schema))
            return rendered

    async def _batch(
        self, txn: _Txn, statements: Sequence[_Stmt], *, commit: bool = False
    ) -> list[Cursor]:
        """Send ``statements`` (after the transaction's prelude, and followed by COMMIT if
        asked) in pipeline mode: one round trip for them all. Their cursors, results in."""
        conn = txn.conn
        if not txn.prelude and not commit and len(statements) == 1:
            template, params = statements[0]
            if isinstance(params, dict):
                return [await conn.execute(self._q(template), {"now": txn.now, **params})]
        if commit and txn.xid_cur is not None:
            assert txn.xid is not None, "a write commits in a batch after its first"
        cursors: list[Cursor] = []
        async with conn.pipeline():
            prelude, txn.prelude = txn.prelude, []
            for query in prelude:
                cur = await conn.execute(query)
                if query is sql.CURRENT_XID:
                    txn.xid_cur = cur
            for template, params in statements:
                if isinstance(params, list):
                    cur = conn.cursor()
                    await cur.executemany(
                        self._q(template), [{"now": txn.now, **one} for one in params]
                    )
                else:
                    cur = await conn.execute(self._q(template), {"now": txn.now, **params})
                cursors.append(cur)
            if commit:
                txn.commit_sent = True
                await conn.execute("COMMIT")
        txn.committed = commit
        if txn.xid is None and txn.xid_cur is not None:
            row = await txn.xid_cur.fetchone()
            assert row is not None
            txn.xid = str(row[0])
        return cursors

    async def _one(self, txn: _Txn, template: str, params: dict[str, Any]) -> Row | None:
        (cur,) = await self._batch(txn, [(template, params)])
        return await cur.fetchone()

    async def _all(self, txn: _Txn, template: str, params: dict[str, Any]) -> list[Row]:
        (cur,) = await self._batch(txn, [(template, params)])
        return await cur.fetchall()

    async def _count(self, txn: _Txn, template: str, params: dict[str, Any]) -> int:
        """How many rows a statement changed."""
        (cur,) = await self._batch(txn, [(template, params)])
        return cur.rowcount

    async def _commit(
        self,
        txn: _Txn,
        run_id: str,
        events: Sequence[tuple[str, str]] = (),
        statements: Sequence[_Stmt] = (),
    ) -> list[list[Row]]:
        """End a write in one message and one round trip: ``statements``, then allocate
        event ids, insert the events, count the change, notify, and COMMIT.

        They travel as one simple-protocol query (values bound by psycopg on this side), so
        the server runs them back to back: the counters row is locked from FINISH_WRITE to
        the end of COMMIT without waiting for this process to be scheduled again. Sets
        ``txn.last_event_id``; returns the rows of each of ``statements``."""
        import psycopg

        assert not txn.prelude, "a write commits after its first batch"
        finish = {
            "n": len(events),
            "run_id": run_id,
            "kinds": [kind for kind, _ in events],
            "datas": [data for _, data in events],
            "channel": self._channel,
        }
        cur = psycopg.AsyncClientCursor(txn.conn)
        parts: list[str] = []
        for template, params in [*statements, (sql.FINISH_WRITE, finish)]:
            for one in params if isinstance(params, list) else [params]:
                parts.append(cur.mogrify(self._q(template), {"now": txn.now, **one}))
        txn.commit_sent = True
        await cur.execute(_query(";\n".join([*parts, "COMMIT"])))
        txn.committed = True
        rows: list[list[Row]] = []
        for _ in parts:
            rows.append(await cur.fetchall() if cur.description is not None else [])
            cur.nextset()
        last = rows.pop()
        txn.last_event_id, txn.stamped = int(last[0][0]), _aware(last[0][1])
        return rows

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"{self._location}: the store is closed")

    async def _write(
        self, body: Callable[[_Txn], Awaitable[T]], recover: Callable[[str], Awaitable[T]]
    ) -> T:
        """Run ``body`` in one read-write transaction, retried while the database is
        unreachable (within ``retry_seconds``); refused on a read-only store. ``body`` ends
        with :meth:`_commit` when it writes. ``recover`` gives the answer when the COMMIT
        landed but its answer was lost with the connection."""
        if self._read_only:
            raise DatabaseError(f"{self._location}: opened read-only")
        try:
            return await self._run(body, "BEGIN")
        except _Landed as landed:
            return await recover(landed.xid)

    async def _snapshot(self, body: Callable[[_Txn], Awaitable[T]]) -> T:
        """Run ``body`` in one read-only snapshot (several statements, one state)."""
        return await self._run(body, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    async def _read(self, body: Callable[[_Txn], Awaitable[T]]) -> T:
        """Run ``body`` (one statement) outside a transaction block."""
        return await self._run(body, None)

    async def _run(self, body: Callable[[_Txn], Awaitable[T]], begin: LiteralString | None) -> T:
        self._check_open()
        deadline = time.monotonic() + self._retry_seconds
        delay = 0.05
        while True:
            try:
                out = await self._attempt(body, begin, deadline)
            except _Retry as exc:
                self._healthy = False
                if time.monotonic() + delay > deadline:
                    raise DatabaseError(f"{self._location}: {exc}") from None
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)
                continue
            self._healthy = True
            return out

    async def _attempt(
        self, body: Callable[[_Txn], Awaitable[T]], begin: LiteralString | None, deadline: float
    ) -> T:
        import psycopg
        from psycopg_pool import PoolTimeout

        wait = max(0.1, min(self._connect_timeout, deadline - time.monotonic()))
        try:
            async with self._pool.connection(timeout=wait) as conn:
                txn = _Txn(conn, None if self._clock is None else self._clock())
                try:
                    if begin is None:
                        return await body(txn)
                    txn.prelude = [begin, sql.CURRENT_XID] if begin == "BEGIN" else [begin]
                    try:
                        out = await body(txn)
                        if not txn.prelude and not txn.committed:
                            await conn.execute("COMMIT")  # nothing was written
                        return out
                    except BaseException:
                        await _abandon(conn)
                        raise
                except psycopg.Error as exc:
                    if not _retryable(exc, conn):
                        raise
                    # A COMMIT whose answer was lost: ask the server what became of it.
                    lost = txn.commit_sent and txn.xid is not None
                    if lost and await self._committed(str(txn.xid), deadline):
                        raise _Landed(str(txn.xid)) from None
                    raise _Retry(_one_line(exc)) from None
        except PoolTimeout:
            raise _Retry(f"no connection to the server within {wait:.1f}s") from None
        except _Retry:
            with contextlib.suppress(Exception):
                await self._pool.check()  # drop the pool's other dead connections
            raise
        except _DamagedRowError as exc:
            raise NotANanoagentDatabaseError(f"{self._location}: damaged data ({exc})") from None
        except psycopg.Error as exc:
            raise DatabaseError(f"{self._location}: {_one_line(exc)}") from None

    async def _committed(self, xid: str, deadline: float) -> bool:
        """Whether transaction ``xid`` committed. Asks on fresh connections until the
        server answers; DatabaseError if it cannot tell (or not before the deadline)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        with contextlib.suppress(Exception):
            await self._pool.check()
        delay = 0.05
        while True:
            status: str | None = "unreachable"
            try:
                async with self._pool.connection(timeout=self._connect_timeout) as conn:
                    cur = await conn.execute(sql.XACT_STATUS, (xid,))
                    row = await cur.fetchone()
                    status = None if row is None else row[0]
            except (psycopg.Error, PoolTimeout):
                pass
            if status == "committed":
                return True
            if status == "aborted":
                return False
            if status is None:
                raise DatabaseError(
                    f"{self._location}: the connection was lost while committing and the"
                    " server no longer knows the outcome; check the run before going on"
                )
            if time.monotonic() + delay > deadline:
                raise DatabaseError(
                    f"{self._location}: the connection was lost while committing and the"
                    " outcome could not be learnt in time"
                )
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)

    # -- RunStore --------------------------------------------------------------------------

    async def create_run(self, run: RunState) -> RunState:
        lease: timedelta | None = None
        if run.lease_expires_at is not None:
            # The creator's clock is not the database's: keep the lease's length, not its end.
            reading = self._clock() if self._clock is not None else utc_now()
            lease = run.lease_expires_at - reading
        params: dict[str, Any] = {
            "run_id": run.run_id,
            "goal": run.goal,
            "max_iterations": run.max_iterations,
            "agent": run.agent,
            "agent_options": json.dumps(run.agent_options, sort_keys=True),
            "phase": run.phase.value,
            "iteration": run.iteration,
            "current_task_id": run.current_task_id,
            "status": run.status.value,
            "finished_at": run.finished_at,
            "owner_host": run.owner.host if run.owner else None,
            "owner_pid": run.owner.pid if run.owner else None,
            "owner_pid_started": run.owner.pid_started if run.owner else None,
            "epoch": run.epoch,
            "heartbeat_at": run.heartbeat_at,
            "lease": lease,
            "abort_requested_at": run.abort_requested_at,
            "error": run.error,
            "result": run.result,
        }
        created = NewEvent(
            kind=EventKind.RUN_CREATED,
            data={"goal": run.goal, "agent": run.agent, "max_iterations": run.max_iterations},
        )
        events = _encoded([created])

        async def txn(t: _Txn) -> RunState:
            row = await self._one(t, sql.INSERT_RUN, params)
            if row is None:
                raise RunExistsError(f"run {run.run_id!r} already exists")
            await self._commit(t, run.run_id, events)
            return _run_from_row(row)

        return await self._write(txn, self._reread(run.run_id))

    async def get_run(self, run_id: str) -> RunState:
        check_run_id(run_id)

        async def read(t: _Txn) -> RunState:
            row = await self._one(t, sql.SELECT_RUN, {"run_id": run_id})
            if row is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            return _run_from_row(row)

        return await self._read(read)

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunState]:
        """The runs that exist among ``run_ids`` (unknown ids are skipped), in one snapshot."""
        wanted = list(run_ids)

        async def read(t: _Txn) -> list[RunState]:
            rows = await self._all(t, sql.SELECT_RUNS, {"run_ids": wanted})
            return [_run_from_row(row) for row in rows]

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
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(sql.WHERE_TEXT)
            params["pattern"] = f"%{escaped}%"
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = sql.LIST_RUNS.replace("{where}", where)

        async def read(t: _Txn) -> list[RunState]:
            return [_run_from_row(row) for row in await self._all(t, query, params)]

        return await self._read(read)

    async def count_runs(self) -> dict[RunStatus, int]:
        async def read(t: _Txn) -> dict[RunStatus, int]:
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

        async def txn(t: _Txn) -> RunState:
            row = await self._one(t, sql.UPDATE_POSITION, params)
            if row is None:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id)
            return _run_from_row(row)

        return await self._write(txn, self._reread(run_id))

    # -- TaskStore and ContextStore ----------------------------------------------------------

    async def save_task(self, run_id: str, task: Task, *, epoch: int) -> None:
        upsert = _task_statements(run_id, [task])

        async def txn(t: _Txn) -> None:
            if await self._count(t, sql.TOUCH_RUN, {"run_id": run_id, "epoch": epoch}) == 0:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id, statements=upsert)

        await self._write(txn, _nothing)

    async def get_all_tasks(self, run_id: str) -> list[Task]:
        async def read(t: _Txn) -> list[Task]:
            rows = await self._all(t, sql.SELECT_TASKS, {"run_id": run_id})
            return [_task_from_row(row) for row in rows]

        return await self._read(read)

    async def get_pending_tasks(self, run_id: str) -> list[Task]:
        async def read(t: _Txn) -> list[Task]:
            rows = await self._all(t, sql.SELECT_PENDING_TASKS, {"run_id": run_id})
            return [_task_from_row(row) for row in rows]

        return await self._read(read)

    async def save_result(self, run_id: str, task_id: str, result: str, *, epoch: int) -> None:
        async def txn(t: _Txn) -> None:
            if await self._count(t, sql.TOUCH_RUN, {"run_id": run_id, "epoch": epoch}) == 0:
                raise await self._fence_failure(t, run_id, epoch)
            await self._check_tasks_exist(t, run_id, [task_id])
            upsert = {"run_id": run_id, "task_ids": [task_id], "texts": [result]}
            await self._commit(t, run_id, statements=[(sql.UPSERT_RESULTS, upsert)])

        await self._write(txn, _nothing)

    async def get_all_results(self, run_id: str) -> dict[str, str]:
        async def read(t: _Txn) -> dict[str, str]:
            rows = await self._all(t, sql.SELECT_RESULTS, {"run_id": run_id})
            results: dict[str, str] = dict(rows)
            return results

        return await self._read(read)

    async def get_run_detail(self, run_id: str) -> tuple[RunState, list[Task], dict[str, str]]:
        """The run, its tasks and its results, from one snapshot (one round trip)."""
        check_run_id(run_id)

        async def read(t: _Txn) -> tuple[RunState, list[Task], dict[str, str]]:
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
                raise RunNotFoundError(f"no run {run_id!r}")
            tasks = [_task_from_row(r) for r in await tasks_cur.fetchall()]
            results: dict[str, str] = dict(await results_cur.fetchall())
            return _run_from_row(row), tasks, results

        return await self._snapshot(read)

    # -- EventStore ------------------------------------------------------------------------

    async def append_event(self, run_id: str, event: NewEvent) -> Event:
        events = _encoded([event])

        async def txn(t: _Txn) -> Event:
            if await self._one(t, sql.RUN_EXISTS, {"run_id": run_id}) is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            await self._commit(t, run_id, events)
            return Event.model_construct(
                id=t.last_event_id,
                run_id=run_id,
                ts=t.stamped,
                kind=event.kind,
                data=json.loads(events[0][1]),
            )

        async def recover(xid: str) -> Event:
            async def read(t: _Txn) -> Event:
                row = await self._one(
                    t, sql.EVENT_BY_XID, {"run_id": run_id, "xid32": str(int(xid) % 2**32)}
                )
                if row is None:
                    raise DatabaseError(f"{self._location}: committed event not found")
                return _event_from_row(row)

            return await self._read(read)

        return await self._write(txn, recover)

    async def read_events(
        self, *, after_id: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[Event]:
        params: dict[str, Any] = {"after_id": after_id, "limit": max(0, limit), "run_id": run_id}
        query = sql.SELECT_EVENTS if run_id is None else sql.SELECT_RUN_EVENTS

        async def read(t: _Txn) -> list[Event]:
            return [_event_from_row(row) for row in await self._all(t, query, params)]

        return await self._read(read)

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
            "host": owner.host,
            "pid": owner.pid,
            "pid_started": owner.pid_started,
            "lease": timedelta(seconds=lease_seconds),
            "expected_epoch": expected_epoch,
            "owner_gone": owner_gone,
        }

        async def txn(t: _Txn) -> RunState:
            row = await self._one(t, sql.CLAIM_RUN, params)
            if row is None:
                raise await self._claim_refusal(t, run_id, expected_epoch)
            claimed = _run_from_row(row)
            event = NewEvent(
                kind=EventKind.RUN_CLAIMED,
                data={"epoch": claimed.epoch, "host": owner.host, "pid": owner.pid},
            )
            await self._commit(t, run_id, _encoded([event]))
            return claimed

        return await self._write(txn, self._reread(run_id))

    async def renew_lease(self, run_id: str, *, epoch: int, lease_seconds: float) -> RunState:
        params = {"run_id": run_id, "epoch": epoch, "lease": timedelta(seconds=lease_seconds)}

        async def txn(t: _Txn) -> RunState:
            row = await self._one(t, sql.RENEW_LEASE, params)
            if row is None:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id)
            return _run_from_row(row)

        return await self._write(txn, self._reread(run_id))

    async def request_abort(self, run_id: str) -> RunState:
        check_run_id(run_id)
        events = _encoded([NewEvent(kind=EventKind.ABORT_REQUESTED)])

        async def txn(t: _Txn) -> RunState:
            wanted = {"run_id": run_id}
            update, read = await self._batch(
                t, [(sql.REQUEST_ABORT, wanted), (sql.SELECT_RUN, wanted)]
            )
            row = await read.fetchone()
            if row is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            run = _run_from_row(row)
            if run.status.finished:
                raise RunFinishedError(f"run {run_id!r} has already finished ({run.status})")
            if update.rowcount:
                await self._commit(t, run_id, events)
            return run

        return await self._write(txn, self._reread(run_id))

    async def abort_unowned(self, run_id: str, *, expected_epoch: int, reason: str) -> RunState:
        check_run_id(run_id)
        params = {"run_id": run_id, "expected_epoch": expected_epoch, "reason": reason}

        async def txn(t: _Txn) -> RunState:
            row = await self._one(t, sql.ABORT_UNOWNED, params)
            if row is None:
                raise await self._claim_refusal(t, run_id, expected_epoch)
            run = _run_from_row(row)
            event = NewEvent(
                kind=EventKind.RUN_ABORTED,
                data={
                    "reason": reason,
                    "phase": run.phase.value,
                    "iteration": run.iteration,
                    "task_id": run.current_task_id,
                },
            )
            await self._commit(t, run_id, _encoded([event]))
            return run

        return await self._write(txn, self._reread(run_id))

    # -- StepStore -------------------------------------------------------------------------

    async def commit_step(self, run_id: str, step: Step, *, epoch: int) -> RunState:
        """Two round trips. First, in one pipeline of prepared statements: the fence (the
        run row locked until COMMIT), the tasks, the results and the new position. Then the
        event ids and COMMIT (see :meth:`_commit`). A stale or unknown run, or a result
        naming a task the run does not have, rolls everything back and says so."""
        ending = step.status is not None and step.status is not RunStatus.RUNNING
        params = {
            "run_id": run_id,
            "epoch": epoch,
            "phase": step.phase.value,
            "iteration": step.iteration,
            "current_task_id": step.current_task_id,
            "status": None if step.status is None else step.status.value,
            "result": step.result,
            "error": step.error,
            "finished": step.status is not None and step.status.finished,
            "release": ending,
        }
        carried = {task.id for task in step.tasks}
        unknown = [task_id for task_id in step.results if task_id not in carried]
        statements: list[_Stmt] = [(sql.LOCK_EPOCH, {"run_id": run_id})]
        if step.tasks:
            statements += _task_statements(run_id, step.tasks)
        if step.results:
            result_ids = list(step.results)
            texts = [step.results[task_id] for task_id in result_ids]
            statements.append(
                (sql.UPSERT_RESULTS, {"run_id": run_id, "task_ids": result_ids, "texts": texts})
            )
        statements.append((sql.FINISH_STEP, params))
        events = _encoded(step.events)

        async def txn(t: _Txn) -> RunState:
            import psycopg

            try:
                fence, *_, finish = await self._batch(t, statements)
            except psycopg.Error:
                if _retryable_state(t.conn):
                    raise
                # Refused by the server (a foreign key, bad data): say why in our terms.
                await _abandon(t.conn)
                refusal = await self._step_refusal(t, run_id, epoch, unknown)
                if refusal is not None:
                    raise refusal from None
                raise
            row = await fence.fetchone()
            finished = await finish.fetchone()
            if row is None or row[0] != epoch or finished is None:
                raise await self._fence_failure(t, run_id, epoch)
            await self._commit(t, run_id, events)
            return _run_from_row(finished)

        return await self._write(txn, self._reread(run_id))

    async def _step_refusal(
        self, t: _Txn, run_id: str, epoch: int, unknown: list[str]
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
                return ValidationError(
                    f"run {run_id!r} has no task {absent[0]!r}; a result needs its task"
                )
        return None

    def _reread(self, run_id: str) -> Callable[[str], Awaitable[RunState]]:
        """What a write whose COMMIT landed (answer lost) returns: the run as it now is."""

        async def recover(xid: str) -> RunState:
            return await self.get_run(run_id)

        return recover

    # -- ChangeWatch -----------------------------------------------------------------------

    async def change_token(self) -> int:
        """Counts notifications of committed writes (no query while listening). The first
        call starts the listener; while it is disconnected, each call polls the change
        counter instead, and raises DatabaseError when that fails too (the server is
        unreachable: the store keeps reconnecting by itself)."""
        self._check_open()
        listener = self._listener
        if listener is None:
            kwargs = dict(self._kwargs)
            if "application_name" in kwargs:
                kwargs["application_name"] += "/listen"
            listener = self._listener = _Listener(
                self._conninfo,
                kwargs,
                self._channel,
                connect_timeout=self._connect_timeout,
                ping=5.0,
            )
            listener.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.ready.wait(), timeout=1.0)
        if not listener.connected:
            await self._poll_changes(listener)
        return listener.token

    async def _poll_changes(self, listener: _Listener) -> None:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self._pool.connection(timeout=0.5) as conn:
                cur = await conn.execute(self._q(sql.POLL_CHANGES))
                row = await cur.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            self._healthy = False
            raise DatabaseError(
                f"{self._location}: disconnected from the server, reconnecting ({_one_line(exc)})"
            ) from None
        self._healthy = True
        changes = None if row is None else int(row[0])
        if changes != self._polled:
            self._polled = changes
            listener.token += 1

    # -- refusals --------------------------------------------------------------------------

    async def _fence_failure(self, t: _Txn, run_id: str, epoch: int) -> NanoagentError:
        row = await self._one(t, sql.SELECT_EPOCH, {"run_id": run_id})
        if row is None:
            return RunNotFoundError(f"no run {run_id!r}")
        if row[0] == epoch:  # the epoch is ours, but the run is no longer running
            return LeaseLostError(
                f"run {run_id!r} is no longer running; this worker no longer holds it"
            )
        return LeaseLostError(
            f"lease on run {run_id!r} lost: epoch is {row[0]}, this worker holds {epoch};"
            " nothing was written"
        )

    async def _claim_refusal(self, t: _Txn, run_id: str, expected_epoch: int) -> NanoagentError:
        row = await self._one(t, sql.SELECT_RUN, {"run_id": run_id})
        if row is None:
            return RunNotFoundError(f"no run {run_id!r}")
        run = _run_from_row(row)
        if run.epoch != expected_epoch:
            return RunBusyError(f"run {run_id!r} was claimed by another worker meanwhile")
        if run.status is RunStatus.COMPLETED:
            return RunFinishedError(f"run {run_id!r} has already completed")
        if run.status.finished:
            return RunFinishedError(f"run {run_id!r} has already finished ({run.status})")
        owner = run.owner
        holder = f"pid {owner.pid} on {owner.host}" if owner else "a worker"
        return RunBusyError(f"run {run_id!r} is held by a live worker ({holder})")

    async def _check_tasks_exist(self, t: _Txn, run_id: str, task_ids: list[str]) -> None:
        """ValidationError for a result naming a task the run does not have (the foreign key
        would refuse it too, but without saying which task)."""
        row = await self._one(t, sql.MISSING_TASK, {"run_id": run_id, "task_ids": task_ids})
        if row is not None:
            raise ValidationError(f"run {run_id!r} has no task {row[0]!r}; a result needs its task")


# -- opening ---------------------------------------------------------------------------------


async def _prepare(
    conn: AsyncConnection[Row],
    render: Callable[[str], str],
    where: str,
    schema: str,
    read_only: bool,
    create: bool,
) -> None:
    """Check what the schema is before writing anything, then create or migrate it."""
    version = await _inspect(conn, render, where, schema)
    if version == sql.SCHEMA_VERSION:
        return
    if version is None and (read_only or not create):
        raise DatabaseNotFoundError(f"{where}: no nanoagent schema {schema!r} in this database")
    if read_only:
        raise DatabaseError(
            f"{where}: schema version {version} is older than {sql.SCHEMA_VERSION};"
            " open it once read-write to migrate it"
        )
    await conn.execute("BEGIN")
    try:
        await conn.execute(sql.MIGRATION_LOCK, (schema,))
        # Re-read under the lock: another process may have migrated meanwhile.
        version = await _inspect(conn, render, where, schema)
        if version is None:
            for statement in sql.BOOTSTRAP:
                await conn.execute(_query(render(statement)))
            version = 0
        for target in range(version, sql.SCHEMA_VERSION):
            for statement in sql.MIGRATIONS[target]:
                await conn.execute(_query(render(statement)))
            await conn.execute(_query(render(sql.SET_VERSION)), {"version": target + 1})
        await conn.execute("COMMIT")
    except BaseException:
        if not conn.closed:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise


async def _inspect(
    conn: AsyncConnection[Row], render: Callable[[str], str], where: str, schema: str
) -> int | None:
    """The schema's version, None if there is no schema (or an empty one) of that name.
    Refuses a schema of another application and one newer than this code."""
    cur = await conn.execute(sql.INSPECT, {"schema": schema, "info": f'"{schema}".schema_info'})
    row = await cur.fetchone()
    assert row is not None
    schema_exists, info_exists, tables = row
    if not info_exists:
        if schema_exists and tables:
            raise NotANanoagentDatabaseError(
                f"{where}: schema {schema!r} holds tables that are not nanoagent's;"
                " choose another schema with ?schema=NAME"
            )
        return None
    cur = await conn.execute(_query(render(sql.READ_INFO)))
    info = await cur.fetchone()
    if info is None or info[0] != sql.APPLICATION:
        raise NotANanoagentDatabaseError(f"{where}: schema {schema!r} is not nanoagent's")
    version = int(info[1])
    if version > sql.SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{where}: schema version {version} is newer than this nanoagent understands"
            f" ({sql.SCHEMA_VERSION}); upgrade nanoagent to open it"
        )
    return version


def _retryable_state(conn: AsyncConnection[Row]) -> bool:
    """Whether the connection itself failed (as opposed to the server refusing a statement)."""
    return conn.closed or conn.broken


async def _abandon(conn: AsyncConnection[Row]) -> None:
    """Undo an unfinished transaction; a connection left mid-protocol (a cancelled
    pipeline, a query in flight) or that cannot roll back is closed, so the pool drops it
    rather than hand it out with stale results."""
    import psycopg
    from psycopg.pq import PipelineStatus, TransactionStatus

    if conn.closed:
        return
    status = conn.info.transaction_status
    if conn.pgconn.pipeline_status != PipelineStatus.OFF or status not in (
        TransactionStatus.IDLE,
        TransactionStatus.INTRANS,
        TransactionStatus.INERROR,
    ):
        await conn.close()
        return
    if status != TransactionStatus.IDLE:
        try:
            await conn.execute("ROLLBACK")
        except psycopg.Error:
            await conn.close()


def _retryable(exc: BaseException, conn: AsyncConnection[Row]) -> bool:
    """Whether ``exc`` left nothing written and the transaction may simply run again: the
    connection broke, or the server rolled the transaction back (serialization failure,
    deadlock, shutdown, idle-in-transaction timeout)."""
    import psycopg

    if conn.closed or conn.broken:
        return True
    state = getattr(exc, "sqlstate", None)
    if state is not None:
        return state in _RETRY_STATES or state.startswith("08")
    return isinstance(exc, psycopg.OperationalError)


@functools.cache
def _quiet_driver_logs() -> None:
    """psycopg_pool logs a warning per failed connection attempt; with no logging set up
    Python would print them on stderr. Failures reach the user as one DatabaseError line."""
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
