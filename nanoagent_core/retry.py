"""One back-off helper for every retry loop of the stores: delays doubling from ``first`` to
``most``, within an optional time budget (measured on the monotonic clock)."""

from __future__ import annotations

import asyncio
import time

__all__ = ["Backoff"]


class Backoff:
    """``wait()`` sleeps the next delay and says True, or says False (without sleeping) when
    sleeping would pass the deadline (``within`` seconds from creation, or ``until`` on the
    monotonic clock; neither: no deadline).
    ``reset()`` starts the delays again from ``first`` (after a success)."""

    def __init__(
        self,
        first: float,
        most: float,
        *,
        within: float | None = None,
        until: float | None = None,
    ) -> None:
        self._first = first
        self._most = most
        self.delay = first
        #: the deadline on the monotonic clock: ``until``, or ``within`` seconds from now
        self.deadline = until if within is None else time.monotonic() + within
        self.attempts = 0

    def reset(self) -> None:
        self.delay = self._first
        self.attempts = 0

    def _next(self) -> float | None:
        delay = self.delay
        if self.deadline is not None and time.monotonic() + delay > self.deadline:
            return None
        self.delay = min(2 * delay, self._most)
        self.attempts += 1
        return delay

    async def wait(self) -> bool:
        delay = self._next()
        if delay is None:
            return False
        await asyncio.sleep(delay)
        return True

    def wait_sync(self) -> bool:
        """As :meth:`wait`, blocking the calling thread (a store's own database thread)."""
        delay = self._next()
        if delay is None:
            return False
        time.sleep(delay)
        return True
