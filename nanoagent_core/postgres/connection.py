"""The transaction and retry engine of the PostgreSQL store: pooled connections, batches
in pipeline mode, the one-message COMMIT that allocates event ids, retries of what wrote
nothing, and the settling of a COMMIT whose answer was lost (see postgres/store.py)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, LiteralString, TypeAlias, TypeVar, cast

from nanoagent_core import rows
from nanoagent_core.errors import (
    DatabaseError,
    NotANanoagentDatabaseError,
    ValidationError,
)
from nanoagent_core.postgres import sql
from nanoagent_core.protocols import NewEvent
from nanoagent_core.retry import Backoff

if TYPE_CHECKING:
    from psycopg import AsyncConnection, AsyncCursor
    from psycopg_pool import AsyncConnectionPool

__all__ = [
    "Engine",
    "Landed",
    "Retry",
    "Stmt",
    "Txn",
    "abandon",
    "encoded",
    "nothing",
    "one_line",
    "quiet_driver_logs",
    "retryable",
    "retryable_state",
    "trusted_sql",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = rows.Row
if TYPE_CHECKING:
    Cursor: TypeAlias = AsyncCursor[Row]

#: SQLSTATEs after which the transaction was rolled back and may simply run again.
_RETRY_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "25P03"})


def one_line(exc: BaseException) -> str:
    """A psycopg error as one short line (no LINE/HINT/traceback)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def trusted_sql(text: str) -> LiteralString:
    """Mark SQL as safe to execute: every statement comes from sql.py, rendered with a
    validated schema name; values always travel as parameters."""
    return cast(LiteralString, text)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _event_data(event: NewEvent) -> str:
    try:
        return json.dumps(event.data)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"event {event.kind!r}: data is not JSON ({exc})") from None


def encoded(events: Iterable[NewEvent]) -> list[tuple[str, str]]:
    """``(kind, json)`` of each event; raises ValidationError before anything is written."""
    return [(event.kind, _event_data(event)) for event in events]


class Retry(Exception):
    """The attempt failed in a way that wrote nothing; the transaction may run again."""


class Landed(Exception):
    """The COMMIT's answer was lost with the connection, but the server says it committed."""

    def __init__(self, xid: str) -> None:
        super().__init__(xid)
        self.xid = xid


async def nothing(xid: str) -> None:
    """The answer of a write that returns nothing, when its COMMIT's answer was lost."""


@dataclass
class Txn:
    """One transaction: its connection, the clock reading it uses, what is still to be sent
    with its first batch (BEGIN, the query of its id), its id, and how far COMMIT got."""

    conn: AsyncConnection[Row]
    now: datetime | None
    prelude: list[LiteralString] = field(default_factory=list[LiteralString])
    xid_cur: Cursor | None = None
    xid: str | None = None
    server_started: datetime | None = None
    #: (run id, kind, data) of the first event the write commits, if any: how a COMMIT
    #: whose answer was lost in a server restart is confirmed (see _committed).
    probe: tuple[str, str, str] | None = None
    commit_sent: bool = False
    committed: bool = False
    last_event_id: int = 0
    stamped: datetime | None = None


#: A statement of a batch: its SQL (a sql.py template) and its parameters; a list of
#: parameter sets runs it once per set (executemany).
Stmt = tuple[str, "dict[str, Any] | list[dict[str, Any]]"]


def retryable_state(conn: AsyncConnection[Row]) -> bool:
    """Whether the connection itself failed (as opposed to the server refusing a statement)."""
    return conn.closed or conn.broken


async def abandon(conn: AsyncConnection[Row]) -> None:
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


def retryable(exc: BaseException, conn: AsyncConnection[Row]) -> bool:
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
def quiet_driver_logs() -> None:
    """psycopg_pool logs a warning per failed connection attempt; with no logging set up
    Python would print them on stderr. Failures reach the user as one DatabaseError line."""
    logging.getLogger("psycopg").addHandler(logging.NullHandler())


class Engine:
    """What runs a store's transactions: the pool, the rendered statements, and whether the
    last attempt reached the server."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Row]],
        *,
        location: str,
        schema: str,
        read_only: bool,
        clock: Callable[[], datetime] | None,
        retry_seconds: float,
        connect_timeout: float,
    ) -> None:
        self._pool = pool
        self._location = location
        self._schema = schema
        self._channel = sql.channel(schema)
        self._read_only = read_only
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._connect_timeout = connect_timeout
        self._rendered: dict[str, LiteralString] = {}
        self._healthy = True
        self._closed = False

    def _q(self, template: str) -> LiteralString:
        try:
            return self._rendered[template]
        except KeyError:
            rendered = self._rendered[template] = trusted_sql(sql.render(template, self._schema))
            return rendered

    async def _batch(
        self, txn: Txn, statements: Sequence[Stmt], *, commit: bool = False
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
            txn.xid, txn.server_started = str(row[0]), row[1]
        return cursors

    async def _one(self, txn: Txn, template: str, params: dict[str, Any]) -> Row | None:
        (cur,) = await self._batch(txn, [(template, params)])
        return await cur.fetchone()

    async def _all(self, txn: Txn, template: str, params: dict[str, Any]) -> list[Row]:
        (cur,) = await self._batch(txn, [(template, params)])
        return await cur.fetchall()

    async def _count(self, txn: Txn, template: str, params: dict[str, Any]) -> int:
        """How many rows a statement changed."""
        (cur,) = await self._batch(txn, [(template, params)])
        return cur.rowcount

    async def _commit(
        self,
        txn: Txn,
        run_id: str,
        events: Sequence[tuple[str, str]] = (),
        statements: Sequence[Stmt] = (),
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
        txn.probe = (run_id, *events[0]) if events else None
        txn.commit_sent = True
        await cur.execute(trusted_sql(";\n".join([*parts, "COMMIT"])))
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
        self, body: Callable[[Txn], Awaitable[T]], recover: Callable[[str], Awaitable[T]]
    ) -> T:
        """Run ``body`` in one read-write transaction, retried while the database is
        unreachable (within ``retry_seconds``); refused on a read-only store. ``body`` ends
        with :meth:`_commit` when it writes. ``recover`` gives the answer when the COMMIT
        landed but its answer was lost with the connection."""
        if self._read_only:
            raise DatabaseError(f"{self._location}: opened read-only")
        try:
            return await self._run(body, "BEGIN")
        except Landed as landed:
            return await recover(landed.xid)

    async def _snapshot(self, body: Callable[[Txn], Awaitable[T]]) -> T:
        """Run ``body`` in one read-only snapshot (several statements, one state)."""
        return await self._run(body, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    async def _read(self, body: Callable[[Txn], Awaitable[T]]) -> T:
        """Run ``body`` (one statement) outside a transaction block."""
        return await self._run(body, None)

    async def _run(self, body: Callable[[Txn], Awaitable[T]], begin: LiteralString | None) -> T:
        self._check_open()
        backoff = Backoff(0.05, 1.0, within=self._retry_seconds)
        assert backoff.deadline is not None
        while True:
            try:
                out = await self._attempt(body, begin, backoff.deadline)
            except Retry as exc:
                self._healthy = False
                if not await backoff.wait():
                    raise DatabaseError(f"{self._location}: {exc}") from None
                logger.info("%s: %s; trying again", self._location, exc)
                continue
            if backoff.attempts:
                logger.info("%s: reached the server again", self._location)
            self._healthy = True
            return out

    async def _attempt(
        self, body: Callable[[Txn], Awaitable[T]], begin: LiteralString | None, deadline: float
    ) -> T:
        import psycopg
        from psycopg_pool import PoolTimeout

        wait = max(0.1, min(self._connect_timeout, deadline - time.monotonic()))
        try:
            async with self._pool.connection(timeout=wait) as conn:
                txn = Txn(conn, None if self._clock is None else self._clock())
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
                        await abandon(conn)
                        raise
                except psycopg.Error as exc:
                    if not retryable(exc, conn):
                        raise
                    # A COMMIT whose answer was lost: ask the server what became of it.
                    lost = txn.commit_sent and txn.xid is not None
                    if lost and await self._committed(txn, deadline):
                        raise Landed(str(txn.xid)) from None
                    raise Retry(one_line(exc)) from None
        except PoolTimeout:
            raise Retry(f"no connection to the server within {wait:.1f}s") from None
        except Retry:
            with contextlib.suppress(Exception):
                await self._pool.check()  # drop the pool's other dead connections
            raise
        except rows.DamagedRowError as exc:
            raise NotANanoagentDatabaseError(f"{self._location}: damaged data ({exc})") from None
        except psycopg.Error as exc:
            raise DatabaseError(f"{self._location}: {one_line(exc)}") from None

    async def _committed(self, txn: Txn, deadline: float) -> bool:
        """Whether ``txn``, whose COMMIT's answer was lost, committed. Asks on fresh
        connections until the server answers; DatabaseError if it cannot tell (or not before
        the deadline).

        The server's word on the transaction's id is final while the server has not
        restarted since the transaction began. After a crash it is not: an id none of whose
        WAL reached the disk is handed out again, so "committed" (or "in progress") may be
        about a later transaction. One that committed before the crash has its id in the WAL
        and keeps it: then anything but "committed" means it did not commit, and "committed"
        is confirmed by the first event the write committed (a write without events cannot
        be confirmed: DatabaseError)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        with contextlib.suppress(Exception):
            await self._pool.check()
        backoff = Backoff(0.05, 1.0, until=deadline)
        logger.warning("%s: connection lost while committing; asking the server", self._location)
        while True:
            status: str | None = "unreachable"
            restarted = False
            try:
                async with self._pool.connection(timeout=self._connect_timeout) as conn:
                    cur = await conn.execute(sql.XACT_STATUS, {"xid": txn.xid})
                    row = await cur.fetchone()
                    assert row is not None
                    status, restarted = row[0], row[1] != txn.server_started
                    if status == "committed" and restarted:
                        status = await self._confirm(conn, txn)
            except (psycopg.Error, PoolTimeout):
                status = "unreachable"
            if status == "committed":
                return True
            if status in ("aborted", "future") or (status == "in progress" and restarted):
                return False
            if status is None:
                raise DatabaseError(
                    f"{self._location}: the connection was lost while committing and the"
                    " server no longer knows the outcome; check the run before going on"
                )
            if not await backoff.wait():
                raise DatabaseError(
                    f"{self._location}: the connection was lost while committing and the"
                    " outcome could not be learnt in time"
                )

    async def _confirm(self, conn: AsyncConnection[Row], txn: Txn) -> str:
        """'committed' if ``txn``'s first event is there (written by its id), else 'aborted'
        (its id was handed out again after a crash); see :meth:`_committed`."""
        if txn.probe is None:
            raise DatabaseError(
                f"{self._location}: the server restarted while a write was committing and"
                " whether it landed cannot be told; check the run before going on"
            )
        run_id, kind, data = txn.probe
        wanted = {"run_id": run_id, "kind": kind, "data": data}
        wanted["xid32"] = str(int(str(txn.xid)) % 2**32)
        cur = await conn.execute(self._q(sql.EVENT_OF_XID), wanted)
        row = await cur.fetchone()
        return "committed" if row is not None and row[0] else "aborted"
