"""Follow one run's events as they commit, until the run ends: ``nanoagent show RUN --follow``.

The same cheap loop as the dashboard's (nanoagent_tui/live.py): an idle poll is one
``change_token()`` (``PRAGMA data_version`` on SQLite, a count of LISTEN/NOTIFY messages on
PostgreSQL); only after a change does it read the events after the last one printed
(``read_events(after_id=...)``: ids grow without gaps, so none is missed or printed twice)
and the run again.

How a follow ends:

* the run finishes or stops (completed, failed, aborted, interrupted, paused): every event
  it committed has been printed, because a step's events and its final status commit in one
  transaction and the events are read once more after the status is seen;
* the run crashed: it is stored running but its worker is gone (a dead pid on this host, or
  an expired lease). The run is read again first (a heartbeat renews the lease without an
  event, and PostgreSQL sends no notification for it), so a live worker is not called
  crashed on a stale copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from nanoagent_core.eventtext import describe_event
from nanoagent_core.models import Event, RunState, RunStatus, utc_now
from nanoagent_core.safetext import visible
from nanoagent_core.status import owner_gone

__all__ = [
    "EXIT_CRASHED",
    "FOLLOW_INTERVAL",
    "FollowEnd",
    "FollowStore",
    "event_line",
    "follow_run",
]

#: Exit status of ``show --follow`` when the run crashed (its worker is gone; ``resume``
#: takes it up). The others are those of ``run``: 0 completed, 1 failed, 5 aborted,
#: 6 paused (the same number: stopped, not finished, ``resume`` continues it), 130 interrupted.
EXIT_CRASHED = 6
#: Seconds between two polls of the change token.
FOLLOW_INTERVAL = 0.2
#: Events read per query.
_PAGE = 1000


class FollowStore(Protocol):
    """What following needs of a store."""

    async def get_run(self, run_id: str) -> RunState: ...

    async def read_events(
        self, *, after_id: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[Event]: ...

    async def change_token(self) -> int: ...


@dataclass(frozen=True)
class FollowEnd:
    """The run as it was when the follow ended."""

    run: RunState
    crashed: bool  #: stored running, but no live worker holds it


def event_line(run_id: str, event: Event) -> str:
    """One event as ``run`` prints it: ``HH:MM:SS RUN kind key=value ...`` (local time)."""
    stamp = event.ts.astimezone().strftime("%H:%M:%S")
    return visible(f"{stamp} {run_id} {describe_event(event.kind, event.data)}")


async def follow_run(
    store: FollowStore,
    run_id: str,
    emit: Callable[[Event], None],
    *,
    interval: float = FOLLOW_INTERVAL,
    now: Callable[[], datetime] = utc_now,
) -> FollowEnd:
    """Call ``emit`` with each of the run's events, oldest first, each exactly once, from the
    first one on, until the run ends. RunNotFoundError for an unknown run."""
    last = 0

    async def drain() -> None:
        nonlocal last
        while True:
            batch = await store.read_events(run_id=run_id, after_id=last, limit=_PAGE)
            for event in batch:
                emit(event)
                last = event.id
            if len(batch) < _PAGE:
                return

    run = await store.get_run(run_id)
    token: int | None = None
    while True:
        current = await store.change_token()
        if current != token:
            token = current
            await drain()
            run = await store.get_run(run_id)
        if run.status is RunStatus.RUNNING and owner_gone(run, now()):
            run = await store.get_run(run_id)  # not a stale copy: a heartbeat writes no event
            if run.status is RunStatus.RUNNING and owner_gone(run, now()):
                await drain()
                return FollowEnd(run, crashed=True)
        if run.status is not RunStatus.RUNNING:
            await drain()  # the events committed with the final status
            return FollowEnd(run, crashed=False)
        await asyncio.sleep(interval)
