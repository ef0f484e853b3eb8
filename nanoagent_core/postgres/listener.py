"""The LISTEN side of a PostgreSQL store: a connection of its own that counts the change
notifications of the store's schema, reconnecting by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from nanoagent_core import rows
from nanoagent_core.errors import DatabaseError
from nanoagent_core.postgres import sql
from nanoagent_core.postgres.connection import Engine, one_line, trusted_sql
from nanoagent_core.retry import Backoff

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

__all__ = ["Listener", "Watched"]

Row = rows.Row

logger = logging.getLogger(__name__)


class Listener:
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
        where: str = "",
    ) -> None:
        self._where = where  # the location as shown (password masked), for logs
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._channel = channel
        self._connect_timeout = connect_timeout
        self._ping = ping
        self.token = 0
        self.connected = False
        self.ready = asyncio.Event()
        #: set on each notification heard (not on a reconnection); whoever waits clears it
        self.notified = asyncio.Event()
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

        backoff = Backoff(0.1, 2.0)
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
            except psycopg.Error as exc:
                if backoff.attempts == 0:
                    logger.warning("%s: listener cannot connect: %s", self._where, one_line(exc))
                await backoff.wait()
                continue
            try:
                await conn.execute(trusted_sql(f'LISTEN "{self._channel}"'))
                self.connected = True
                self.token += 1
                self.ready.set()
                if backoff.attempts:
                    logger.info("%s: listener reconnected", self._where)
                backoff.reset()
                while True:
                    async for _ in conn.notifies(timeout=self._ping):
                        self.token += 1
                        self.notified.set()
                    await asyncio.wait_for(conn.execute("SELECT 1"), self._connect_timeout)
            except (psycopg.Error, TimeoutError) as exc:
                logger.warning("%s: listener lost its connection: %s", self._where, one_line(exc))
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await conn.close()
            await backoff.wait()


class Watched(Engine):
    """A store's ChangeWatch: a :class:`Listener` started by the first :meth:`change_token`,
    and polling of the change counter while it is disconnected."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Row]],
        *,
        conninfo: str,
        kwargs: dict[str, Any],
        **engine: Any,
    ) -> None:
        super().__init__(pool, **engine)
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._listener: Listener | None = None
        self._polled: int | None = None

    async def _stop_listening(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

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

    # -- ChangeWatch -----------------------------------------------------------------------

    @property
    def pushes_changes(self) -> bool:
        """True: the server notifies committed writes (LISTEN/NOTIFY); :meth:`change_token`
        counts them without a query (it polls only while the listener is disconnected)."""
        return True

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
            listener = self._listener = Listener(
                self._conninfo,
                kwargs,
                self._channel,
                connect_timeout=self._connect_timeout,
                ping=5.0,
                where=self._location,
            )
            listener.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.ready.wait(), timeout=1.0)
        if not listener.connected:
            await self._poll_changes(listener)
        return listener.token

    async def _poll_changes(self, listener: Listener) -> None:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self._pool.connection(timeout=0.5) as conn:
                cur = await conn.execute(self._q(sql.POLL_CHANGES))
                row = await cur.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            self._healthy = False
            raise DatabaseError(
                f"{self._location}: disconnected from the server, reconnecting ({one_line(exc)})"
            ) from None
        self._healthy = True
        changes = None if row is None else int(row[0])
        if changes != self._polled:
            self._polled = changes
            listener.token += 1
