"""The LISTEN side of a PostgreSQL store: a connection of its own that counts the change
notifications of the store's schema, reconnecting by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nanoagent_core.postgres.connection import one_line, trusted_sql
from nanoagent_core.retry import Backoff

__all__ = ["Listener"]

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
                    await asyncio.wait_for(conn.execute("SELECT 1"), self._connect_timeout)
            except (psycopg.Error, TimeoutError) as exc:
                logger.warning("%s: listener lost its connection: %s", self._where, one_line(exc))
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await conn.close()
            await backoff.wait()
