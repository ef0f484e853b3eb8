"""What the dashboard's live view holds and hands on: its health, the filter and sort, a run's
detail, what one poll found (Update) and poll counters. Plain data, no Textual, no store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from nanoagent_core.approvals import ApprovalRequest
from nanoagent_core.models import Event, RunState, RunStatus, Task
from nanoagent_core.status import stored_statuses
from nanoagent_tui.formatting import STATUS_ORDER

__all__ = ["Detail", "Filter", "Health", "PollStats", "SortMode", "Update", "sort_key"]


class Health(StrEnum):
    STARTING = "starting"  #: nothing read yet
    MISSING = "missing"  #: no database file (yet): the empty state, retried every second
    LIVE = "live"  #: the last poll succeeded
    WAITING = "waiting"  #: the database is busy or not ready; retrying
    BROKEN = "broken"  #: not a nanoagent database, damaged, or too new: an error screen


class SortMode(StrEnum):
    ACTIVITY = "activity"  #: newest activity first
    STATUS = "status"  #: needing attention first (crashed, aborting, running, failed, ...)
    CREATED = "created"  #: newest first


@dataclass(frozen=True)
class Filter:
    text: str = ""
    status: str | None = None  #: a shown status word, or "aborting"

    def stored(self) -> list[RunStatus] | None:
        """The stored statuses that can show as ``status``."""
        return stored_statuses(self.status)

    def matches(self, run: RunState, word: str) -> bool:
        if self.status is not None and word != self.status:
            return False
        if not self.text:
            return True
        needle = self.text.casefold()
        return needle in run.run_id.casefold() or needle in run.goal.casefold()

    @property
    def active(self) -> bool:
        return bool(self.text) or self.status is not None


@dataclass(frozen=True)
class Detail:
    """One run with its tasks and results, read in one snapshot."""

    run: RunState
    tasks: tuple[Task, ...]
    results: Mapping[str, str]
    #: the request waiting for a person's decision (read for a paused run only)
    pending: ApprovalRequest | None = None


@dataclass(frozen=True)
class Update:
    """What one poll found."""

    runs: tuple[RunState, ...] = ()  #: runs fetched again (changed or new)
    events: tuple[Event, ...] = ()  #: new events, all runs, oldest first
    reloaded: bool = False  #: the kept runs were loaded afresh (open, filter change)
    health_changed: bool = False
    detail: Detail | None = None  #: the watched run, fetched again
    history: tuple[Event, ...] | None = None  #: the watched run's events, when (re)loaded
    watched: str | None = None  #: the run ``detail`` and ``history`` are about
    #: Ids of the runs whose kept state changed (fetched again, or dropped from the kept
    #: runs); None when unknown: then every row is to be judged again.
    changed: frozenset[str] | None = None


@dataclass
class PollStats:
    """Counters for measuring what polls cost."""

    idle: int = 0
    loads: int = 0
    last_load: float = 0.0
    fetched_runs: int = 0  #: runs fetched by the last refresh


def sort_key(mode: SortMode) -> Callable[[tuple[RunState, str]], tuple[float | int | str, ...]]:
    if mode is SortMode.STATUS:
        return lambda item: (
            STATUS_ORDER.get(item[1], 9),
            -item[0].updated_at.timestamp(),
            item[0].run_id,
        )
    if mode is SortMode.CREATED:
        return lambda item: (-item[0].created_at.timestamp(), item[0].run_id)
    return lambda item: (-item[0].updated_at.timestamp(), item[0].run_id)
