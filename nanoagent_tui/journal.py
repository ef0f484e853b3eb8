"""Reading one run's conversation journal for the dashboard, through the Viewer Protocol.

The poll loop's store is left to the poll loop: each read opens a viewer of its own (read
only, never creating anything), reads the journal and closes it. Screens read it in a worker
and again only when the run's fingerprint (its ledger and its tasks' outcomes) moved: an
attempt is journaled in the same commit as its outcome, so nothing else can add an entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nanoagent_core.models import Attempt, ModelCall, RunState, Task
from nanoagent_core.protocols import Viewer
from nanoagent_core.stores import open_viewer

__all__ = ["JOURNAL_BUSY_TIMEOUT", "JournalOpener", "fingerprint", "read_calls", "read_journal"]

#: How long a journal read waits for a busy SQLite file (it runs in a worker: the screen
#: stays responsive meanwhile).
JOURNAL_BUSY_TIMEOUT = 10.0

JournalOpener = Callable[[str], Awaitable[Viewer]]


async def _open(location: str) -> Viewer:
    return await open_viewer(location, busy_timeout=JOURNAL_BUSY_TIMEOUT)


async def read_journal(
    location: str, run_id: str, opener: JournalOpener | None = None
) -> list[Attempt]:
    """The run's journal (DatabaseError when the database cannot be read now)."""
    store = await (opener or _open)(location)
    try:
        return await store.get_attempts(run_id)
    finally:
        await store.close()


async def read_calls(
    location: str, run_id: str, opener: JournalOpener | None = None
) -> list[ModelCall]:
    """The run's planner and reflector calls (DatabaseError when it cannot be read now)."""
    store = await (opener or _open)(location)
    try:
        return await store.get_calls(run_id)
    finally:
        await store.close()


def fingerprint(run: RunState, tasks: tuple[Task, ...]) -> tuple[object, ...]:
    """What changes whenever the run's journal gains an entry."""
    return (
        run.run_id,
        run.requests,
        run.tokens_in,
        run.tokens_out,
        tuple((t.id, t.status, t.attempts, t.failures) for t in tasks),
    )
