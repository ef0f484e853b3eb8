"""A stdlib ``sqlite3`` connection that lives on one thread of its own.

Each call hands one function to that thread (one hop per operation) and awaits its answer.
Cancelling the awaiting coroutine does not stop or skip the function: once handed over, it
runs to its end on the thread (a transaction commits or rolls back there, never half-way),
and calls run in the order they were made.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["ConnectionThread"]

T = TypeVar("T")


class ConnectionThread:
    """One ``sqlite3.Connection`` and the one thread that uses it."""

    def __init__(self, name: str = "nanoagent-sqlite") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def connect(self, target: str, *, uri: bool) -> None:
        """Open the connection on the thread (autocommit: BEGIN/COMMIT are ours)."""

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)

        self._conn = await self._hand_over(connect)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on the connection's thread."""
        conn = self._conn
        assert conn is not None, "connect() first"
        return await self._hand_over(fn, conn, *args)

    async def close(self) -> None:
        """Close the connection on its thread (after every call already handed over), then
        let the thread end."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await self._hand_over(conn.close)
        finally:
            self._executor.shutdown(wait=False)

    async def _hand_over(self, fn: Callable[..., T], *args: Any) -> T:
        future = asyncio.wrap_future(self._executor.submit(fn, *args))
        # shield: a cancelled caller must not cancel the job itself (a queued COMMIT would
        # otherwise be dropped while its BEGIN ran); it runs to its end on the thread.
        return await asyncio.shield(future)
