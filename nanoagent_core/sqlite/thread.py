"""A stdlib ``sqlite3`` connection that lives on one thread of its own.

Each call hands one function to that thread (one hop per operation) and awaits its answer.
Cancelling the awaiting coroutine does not stop or skip the function: once handed over, it
runs to its end on the thread (a transaction commits or rolls back there, never half-way),
and calls run in the order they were made.

:meth:`ConnectionThread.run_here` runs a short function on the caller's own thread instead,
when nothing handed over is still running or waiting: no hop at all (a hop is two thread
wake-ups, the larger part of a short transaction's cost on a busy machine). It holds the
caller until it returns, so nothing can cancel it half-way either, and the order of calls
still holds (a hand-over from another thread waits for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["NOT_HERE", "ConnectionThread"]

T = TypeVar("T")


class _NotHere:
    """:meth:`ConnectionThread.run_here`'s answer when the function must be handed over."""


NOT_HERE: Any = _NotHere()

#: a job: the function, its arguments, the future for its answer and that future's loop
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled: the job ran anyway; nobody waits for it
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ConnectionThread:
    """One ``sqlite3.Connection`` and the one thread that uses it (a daemon: a store left
    unclosed never holds up the interpreter's exit)."""

    def __init__(self, name: str = "nanoagent-sqlite") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        #: jobs handed over whose function has not returned yet; run_here needs 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args, future, loop = job
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the caller, whatever it is
                error = exc
            with self._lock:
                self._in_flight -= 1
            # RuntimeError: the caller's loop is closed, so nobody is waiting
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result, error)

    async def connect(self, target: str, *, uri: bool) -> None:
        """Open the connection on the thread (autocommit: BEGIN/COMMIT are ours)."""

        def connect() -> None:
            conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
            with self._lock:  # set here, not by the caller: a cancelled caller never would,
                self._conn = conn  # and close() would leave the connection open

        await self._hand_over(connect)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on the connection's thread."""
        conn = self._conn
        assert conn is not None, "connect() first"
        return await self._hand_over(fn, conn, *args)

    def run_here(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` right here, on the calling thread, if the connection's thread
        has nothing to do (no job handed over is waiting or running); else NOT_HERE, and
        nothing ran. For short functions only: the caller (an event loop) waits for it."""
        with self._lock:
            conn = self._conn
            if self._in_flight or conn is None:
                return NOT_HERE
            return fn(conn, *args)

    async def close(self) -> None:
        """Close the connection on its thread (after every call already handed over), then
        end the thread."""

        def close() -> None:
            with self._lock:
                conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

        try:
            await self._hand_over(close)  # after the jobs before it, a connect() included
        finally:
            self._jobs.put(None)

    async def _hand_over(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # Once queued, the job runs to its end on the thread even if the caller is
        # cancelled meanwhile (cancelling only drops the wait): a transaction is never cut.
        with self._lock:
            self._in_flight += 1
        self._jobs.put((fn, args, future, loop))
        return await future
