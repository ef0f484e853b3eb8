"""The status a person is shown: the stored one, except that a ``running`` run nobody live
holds is ``crashed``, a live one whose abort was requested is ``aborting``, and a run whose
row cannot be read is ``damaged``.

One predicate, :func:`held_by_live_worker`, decides whether a live worker holds a run, for
every reader (``list``, ``show``, the dashboard) and every writer (``resume``, ``abort``).
On this host the owner's pid (paired with its start time) decides: a worker that cannot renew
its lease because another process holds the write lock is alive, and still holds the run. A
frozen (SIGSTOPped) worker, or a worker on another host, is judged by its lease.

A status derived from a row read *before* the worker's last commit can be wrong: the worker
commits ``completed`` and exits, and a pid check made after that exit calls the old
``running`` row crashed. :func:`verdicts` therefore reads a run again after its worker was
seen gone, and calls it crashed only if that later row still says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from nanoagent_core.errors import DamagedRunError, RunBusyError
from nanoagent_core.models import RunState, RunStatus, utc_now
from nanoagent_core.procinfo import Liveness, owner_liveness

__all__ = [
    "RESUMABLE",
    "ShownStatus",
    "check_not_held",
    "check_readable",
    "held_by_live_worker",
    "owner_gone",
    "shown_status",
    "stored_statuses",
    "verdict",
    "verdicts",
]


class ShownStatus(StrEnum):
    RUNNING = "running"  #: a live worker holds the run
    ABORTING = "aborting"  #: a live worker holds the run, and its abort was requested
    CRASHED = "crashed"  #: stored running, but its worker is gone or its lease expired
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    PAUSED = "paused"  #: stopped at a checkpoint, waiting (see RunState.pause_reason); resumable
    QUEUED = "queued"  #: waiting for a pool worker (``nanoagent worker``) to claim it
    DAMAGED = "damaged"  #: its row holds what nanoagent never writes (see RunState.damaged)


#: Shown statuses that ``resume`` takes up.
RESUMABLE = frozenset(
    {
        ShownStatus.CRASHED,
        ShownStatus.INTERRUPTED,
        ShownStatus.FAILED,
        ShownStatus.ABORTED,
        ShownStatus.PAUSED,
    }
)


#: Shown words a stored-``running`` run takes (the dashboard's "aborting" is one of them).
_SHOWN_AS_RUNNING = frozenset({"running", "crashed", "aborting"})


def stored_statuses(shown: str | None) -> list[RunStatus] | None:
    """The stored statuses whose runs can show as ``shown`` (None: any, as for no filter or
    ``damaged``, which a run shows whatever its stored status says)."""
    if shown is None or shown == ShownStatus.DAMAGED:
        return None
    if shown in _SHOWN_AS_RUNNING:
        return [RunStatus.RUNNING]
    return [RunStatus(shown)]


def held_by_live_worker(run: RunState, now: datetime | None = None) -> bool:
    """True when a live worker holds a stored-``running`` run (or is about to claim it).

    * owner on this host: its process (pid + start time) decides; a frozen one counts while
      its lease lasts;
    * owner on another host, or no owner yet (created, not claimed): its lease decides.
    """
    if run.status is not RunStatus.RUNNING:
        return False
    moment = now or utc_now()
    lease_live = run.lease_expires_at is not None and run.lease_expires_at > moment
    if run.owner is None:
        return lease_live
    liveness = owner_liveness(run.owner)
    if liveness is Liveness.ALIVE:
        return True
    if liveness is Liveness.GONE:
        return False
    return lease_live  # REMOTE or STOPPED


def owner_gone(run: RunState, now: datetime | None = None) -> bool:
    """True when a stored-``running`` run has no live worker (the opposite of held)."""
    return run.status is RunStatus.RUNNING and not held_by_live_worker(run, now)


def shown_status(run: RunState, now: datetime | None = None) -> ShownStatus:
    """The status of ``run`` judged now. A ``crashed`` here may come from a row read before
    the worker's last commit: readers that show it use :func:`verdicts`."""
    if run.damaged is not None:
        return ShownStatus.DAMAGED
    if owner_gone(run, now):
        return ShownStatus.CRASHED
    if run.status is RunStatus.RUNNING and run.abort_requested_at is not None:
        return ShownStatus.ABORTING
    return ShownStatus(run.status.value)


def check_not_held(run: RunState) -> None:
    """RunBusyError while a live worker holds ``run`` (what resume and a claim refuse)."""
    if held_by_live_worker(run) and run.owner is not None:
        raise RunBusyError(
            f"run {run.run_id!r} is held by a live worker (pid {run.owner.pid} on {run.owner.host})"
        )


def check_readable(run: RunState) -> None:
    """DamagedRunError for a run whose row could not be read whole: nothing acts on it."""
    if run.damaged is not None:
        raise DamagedRunError(f"run {run.run_id!r} is damaged: {run.damaged}")


class RunReader(Protocol):
    async def get_runs(self, run_ids: Sequence[str]) -> list[RunState]: ...


#: Rounds of reading again: each needs the worker that claimed the run meanwhile to die too.
_ROUNDS = 3


async def verdicts(
    store: RunReader, runs: Sequence[RunState], now: datetime | None = None
) -> list[tuple[RunState, ShownStatus]]:
    """Each run with the status to show, ``crashed`` only on a row read after its worker was
    seen gone: a run that looks crashed is read again (after the liveness check), and the
    later row is the one judged and returned. A run deleted meanwhile keeps its old row."""
    judged = [(run, shown_status(run, now)) for run in runs]
    for _ in range(_ROUNDS):
        suspects = {
            run.run_id: i for i, (run, word) in enumerate(judged) if word is ShownStatus.CRASHED
        }
        if not suspects:
            break
        changed = False
        for fresh in await store.get_runs(list(suspects)):
            i = suspects[fresh.run_id]
            old = judged[i][0]
            if _same_row(old, fresh):
                continue  # still running under the owner seen gone: crashed for certain
            judged[i] = (fresh, shown_status(fresh, now))
            changed = True
        if not changed:
            break
    return judged


async def verdict(
    store: RunReader, run: RunState, now: datetime | None = None
) -> tuple[RunState, ShownStatus]:
    """:func:`verdicts` for one run."""
    return (await verdicts(store, [run], now))[0]


def _same_row(old: RunState, new: RunState) -> bool:
    return (old.status, old.epoch, old.updated_at, old.lease_expires_at) == (
        new.status,
        new.epoch,
        new.updated_at,
        new.lease_expires_at,
    )
