"""The status a person is shown: the stored one, except that a ``running`` run nobody
live holds is ``crashed``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from nanoagent_core.models import RunState, RunStatus, utc_now
from nanoagent_core.procinfo import owner_alive

__all__ = ["RESUMABLE", "ShownStatus", "owner_gone", "shown_status"]


class ShownStatus(StrEnum):
    RUNNING = "running"  #: a live worker holds the run
    CRASHED = "crashed"  #: stored running, but its worker is gone or its lease expired
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"


#: Shown statuses that ``resume`` takes up.
RESUMABLE = frozenset(
    {ShownStatus.CRASHED, ShownStatus.INTERRUPTED, ShownStatus.FAILED, ShownStatus.ABORTED}
)


def owner_gone(run: RunState, now: datetime | None = None) -> bool:
    """True when a stored-``running`` run has no live worker: its owner process on this host
    is dead (or its pid now belongs to another process), or its lease has expired."""
    if run.status is not RunStatus.RUNNING:
        return False
    moment = now or utc_now()
    lease_over = run.lease_expires_at is None or run.lease_expires_at <= moment
    if run.owner is None:
        return lease_over  # created, not claimed yet: the worker has until the lease runs out
    alive = owner_alive(run.owner)
    if alive is None:  # another host: only its lease can tell
        return lease_over
    return not alive or lease_over


def shown_status(run: RunState, now: datetime | None = None) -> ShownStatus:
    if owner_gone(run, now):
        return ShownStatus.CRASHED
    return ShownStatus(run.status.value)
