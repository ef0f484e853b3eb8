"""The dashboard's live view of a database: what it polls, what it keeps, what changed.

No Textual here, and no concrete store: one :class:`LiveData` owns one read-only
:class:`~nanoagent_core.protocols.Viewer` (opened by :func:`nanoagent_core.stores.open_viewer`,
failing fast) and is polled by one loop, so polls never overlap. An idle poll is one
``change_token`` (SQLite: ``PRAGMA data_version``; PostgreSQL: a counter its notifications
move, no query); after a change it reads only the events after the last one seen and fetches
again only the runs those events touch (plus running runs whose cached lease is about to run
out, since a heartbeat renews the lease without an event). The runs it keeps are bounded: the
newest ``window`` runs of the current filter plus every stored-running run, so the cost of a
refresh does not grow with the number of runs in the database.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nanoagent_core.approvals import pending_of
from nanoagent_core.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    NotANanoagentDatabaseError,
    RunNotFoundError,
    SchemaTooNewError,
)
from nanoagent_core.models import Event, EventKind, PauseReason, RunState, RunStatus
from nanoagent_core.paths import MEMORY, display_location
from nanoagent_core.procinfo import owner_alive
from nanoagent_core.protocols import Viewer
from nanoagent_core.status import ShownStatus
from nanoagent_core.stores import open_viewer
from nanoagent_tui.formatting import ABORTING, STATUS_ORDER, status_word
from nanoagent_tui.live_model import Detail, Filter, Health, PollStats, SortMode, Update, sort_key

__all__ = [
    "LEASE_MARGIN",
    "Detail",
    "Filter",
    "Health",
    "LiveData",
    "PollStats",
    "SortMode",
    "Update",
    "ViewerStore",
    "open_viewer",
]

#: A running run whose cached lease ends within this many seconds is fetched again on the
#: next change (its worker's heartbeat renewed it without writing an event).
LEASE_MARGIN = 3.0
#: A lease that ended longer ago than this is not looked at again until its run has an event.
STALE_LEASE = 300.0
#: Events read per query, and at most per poll (the rest wait for the next poll).
EVENT_PAGE = 1000
EVENTS_PER_POLL = 10_000
#: Stored-running runs kept whatever the filter (they decide the running/crashed counts).
RUNNING_CAP = 2000
#: Events of the watched run kept for its log.
DETAIL_EVENTS = 2000
#: Seconds between attempts to open a database that is missing or not ready.
REOPEN_EVERY = 1.0

#: Event kinds after which a run's stored status may differ (the counts are recounted).
STATUS_KINDS = frozenset(
    {
        EventKind.RUN_CREATED,
        EventKind.RUN_CLAIMED,
        EventKind.RUN_COMPLETED,
        EventKind.RUN_FAILED,
        EventKind.RUN_INTERRUPTED,
        EventKind.RUN_ABORTED,
        EventKind.RUN_PAUSED,
    }
)

#: What a dashboard watches: a SQLite file or a PostgreSQL database, seen through the Protocol.
ViewerStore = Viewer
Opener = Callable[[str], Awaitable[ViewerStore]]


@dataclass
class _Cursor:
    token: int | None = None
    last_event: int = 0


class LiveData:
    """Polls one database and keeps a bounded, current picture of its runs."""

    def __init__(
        self,
        location: str,
        *,
        window: int = 500,
        opener: Opener | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.window = window
        self.health = Health.STARTING
        self.message = ""
        self.waiting_since: float | None = None
        self.counts: dict[RunStatus, int] = {}
        self.runs: dict[str, RunState] = {}
        self.filter = Filter()
        self.truncated = False  #: more runs match the filter than the window holds
        self.stats = PollStats()
        self._opener: Opener = opener or open_viewer
        self._monotonic = monotonic
        self._store: ViewerStore | None = None
        self._cursor = _Cursor()
        self._reload = True
        self._watched: str | None = None
        self._watch_pending = False
        self._next_open = 0.0
        self._floor = 0.0  #: updated_at of the oldest kept run, when the window is full
        #: Rows shown crashed: each was read after its worker was seen gone (status.py).
        self._gone: set[tuple[str, int, datetime, datetime | None]] = set()

    # -- what the screens ask -------------------------------------------------------------

    def waited(self) -> float | None:
        """Seconds spent waiting for a busy database, or None when not waiting."""
        if self.waiting_since is None:
            return None
        return max(0.0, self._monotonic() - self.waiting_since)

    @property
    def pushes_changes(self) -> bool:
        """Whether the open store is told of changes (an idle poll then costs no query);
        False while nothing is open."""
        return self._store is not None and self._store.pushes_changes

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def set_filter(self, new: Filter) -> None:
        """Takes effect at the next poll (the runs are loaded again through SQL)."""
        if new != self.filter:
            self.filter = new
            self._reload = True

    @property
    def watched(self) -> str | None:
        """The run followed for the detail screen, if any."""
        return self._watched

    def watch(self, run_id: str | None) -> None:
        """Follow one run's tasks and events (the detail screen); None stops."""
        self._watched = run_id
        self._watch_pending = run_id is not None

    def word(self, run: RunState, now: datetime) -> str:
        """The status word of ``run``: ``crashed`` only for a row that a poll read after its
        worker was seen gone; until then (at most one poll) a row read before the worker's
        last commit still shows what it said (running)."""
        word = status_word(run, now)
        if word == ShownStatus.CRASHED and _identity(run) not in self._gone:
            return ABORTING if run.abort_requested_at is not None else ShownStatus.RUNNING.value
        return word

    def visible(self, now: datetime, sort: SortMode) -> list[tuple[RunState, str]]:
        """The kept runs the filter lets through, in ``sort`` order, with their status word."""
        rows = [
            (run, word)
            for run in self.runs.values()
            if self.filter.matches(run, word := self.word(run, now))
        ]
        rows.sort(key=sort_key(sort))
        return rows

    def shown_counts(self, now: datetime) -> dict[str, int]:
        """Runs per shown status in the whole database (running split into running, aborting
        and crashed from the kept stored-running runs)."""
        counts = {status.value: n for status, n in self.counts.items() if n}
        stored_running = counts.pop(RunStatus.RUNNING.value, 0)
        split: dict[str, int] = {}
        for run in self.runs.values():
            if run.status is RunStatus.RUNNING:
                word = self.word(run, now)
                split[word] = split.get(word, 0) + 1
        split_total = sum(split.values())
        if stored_running > split_total:
            split[ShownStatus.RUNNING] = split.get(ShownStatus.RUNNING, 0) + (
                stored_running - split_total
            )
        counts.update({word: n for word, n in split.items() if n})
        return dict(sorted(counts.items(), key=lambda item: STATUS_ORDER.get(item[0], 9)))

    # -- polling --------------------------------------------------------------------------

    async def poll(self, now: datetime) -> Update | None:
        """One poll; None when nothing changed. Never raises for database trouble: it shows
        in ``health`` and ``message``."""
        if self.health is Health.BROKEN:
            return None
        if self._store is None:
            if self._monotonic() < self._next_open:
                return None
            opened = await self._open()
            if self._store is None:
                return opened
        try:
            return await self._refresh(now)
        except (NotANanoagentDatabaseError, SchemaTooNewError) as exc:
            await self.close()
            return self._set(Health.BROKEN, str(exc))
        except DatabaseError as exc:
            return self._set(Health.WAITING, str(exc))

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    # -- internals --------------------------------------------------------------------------

    def _set(self, health: Health, message: str = "") -> Update | None:
        if health is Health.WAITING and self.health is not Health.WAITING:
            self.waiting_since = self._monotonic()
        elif health is not Health.WAITING:
            self.waiting_since = None
        changed = (health, message) != (self.health, self.message)
        self.health, self.message = health, message
        return Update(health_changed=True) if changed else None

    async def _open(self) -> Update | None:
        location = self.location
        if location == MEMORY:
            return self._set(
                Health.BROKEN,
                f"{location}: the dashboard shows a database that workers share; pass --db PATH",
            )
        self._next_open = self._monotonic() + REOPEN_EVERY
        try:
            self._store = await self._opener(location)
        except DatabaseNotFoundError:
            return self._set(Health.MISSING, f"{display_location(location)}: no database here yet")
        except (NotANanoagentDatabaseError, SchemaTooNewError) as exc:
            return self._set(Health.BROKEN, str(exc))
        except DatabaseError as exc:
            if _empty_file(location):  # being created by a first run right now
                return self._set(Health.MISSING, f"{location}: the database is being created")
            return self._set(Health.WAITING, str(exc))
        self._cursor = _Cursor()
        self._reload = True
        return None

    async def _refresh(self, now: datetime) -> Update | None:
        store = self._store
        assert store is not None
        token = await store.change_token()
        if self._reload:
            return await self._load(store, token, now)
        watch_pending = self._watch_pending
        if token == self._cursor.token and not watch_pending:
            self.stats.idle += 1
            confirmed = await self._confirm(store, now)
            update = Update(runs=confirmed, changed=_ids(confirmed)) if confirmed else None
            if self.health is not Health.LIVE:
                return self._set(Health.LIVE) or update
            return update
        events, last, more = await self._new_events(store)
        touched = {event.run_id for event in events}
        touched.update(
            run.run_id
            for run in self.runs.values()
            if run.status is RunStatus.RUNNING and _lease_ending(run, now)
        )
        runs = await store.get_runs(sorted(touched)) if touched else []
        counts = (
            await store.count_runs()
            if any(event.kind in STATUS_KINDS for event in events)
            else self.counts
        )
        detail, history = None, None
        watched = self._watched
        if watched is not None and (watch_pending or watched in touched):
            detail = await _read_detail(store, watched)
            if watch_pending:
                history = await _read_history(store, watched)
        # Everything was read: only now move the cursor (a failed poll is simply retried).
        self._cursor = _Cursor(None if more else token, last)
        self.counts = counts
        dropped = self._absorb(runs, now)
        runs.extend(await self._confirm(store, now))
        if watch_pending and watched == self._watched:
            self._watch_pending = False
        health = self._set(Health.LIVE)
        self.stats.fetched_runs = len(runs)
        return Update(
            runs=tuple(runs),
            events=tuple(events),
            health_changed=health is not None,
            detail=detail,
            history=history,
            watched=watched,
            changed=_ids(runs) | dropped,
        )

    async def _confirm(self, store: ViewerStore, now: datetime) -> tuple[RunState, ...]:
        """Read again every kept run that looks crashed and is not confirmed yet: the check
        that its worker is gone comes first, so a row read now that still says running under
        that worker is a crash; a row that changed (the worker's last commit) replaces the
        old one and is judged at the next poll. Returns the runs whose word changed."""
        suspects = [
            run
            for run in self.runs.values()
            if run.status is RunStatus.RUNNING
            and _identity(run) not in self._gone
            and status_word(run, now) == ShownStatus.CRASHED
        ]
        # Forget the confirmations of rows no longer kept (O(confirmed), not O(runs): this
        # runs at every idle poll).
        runs = self.runs
        self._gone = {
            gone for gone in self._gone if gone[0] in runs and _identity(runs[gone[0]]) == gone
        }
        if not suspects:
            return ()
        fresh = await store.get_runs([run.run_id for run in suspects])
        seen = {_identity(run) for run in suspects}
        for run in fresh:
            if _identity(run) in seen:
                self._gone.add(_identity(run))
            elif run.run_id in self.runs:
                self.runs[run.run_id] = run
        return tuple(fresh)

    async def _load(self, store: ViewerStore, token: int, now: datetime) -> Update:
        began = time.perf_counter()
        last = await store.last_event_id()
        counts = await store.count_runs()
        wanted = self.filter
        window = await store.list_runs(
            statuses=wanted.stored(), text=wanted.text or None, limit=self.window
        )
        running = await store.list_runs(statuses=[RunStatus.RUNNING], limit=RUNNING_CAP)
        detail, history = None, None
        watched = self._watched
        if watched is not None:
            detail = await _read_detail(store, watched)
            history = await _read_history(store, watched)
        self.runs = {run.run_id: run for run in running}
        self.runs.update((run.run_id, run) for run in window)
        await self._confirm(store, now)
        self.truncated = len(window) >= self.window
        self._floor = window[-1].updated_at.timestamp() if window else 0.0
        self.counts = counts
        self._cursor = _Cursor(token, last)
        self._reload = False
        self._watch_pending = False
        self._set(Health.LIVE)
        self.stats.loads += 1
        self.stats.last_load = time.perf_counter() - began
        return Update(
            reloaded=True, health_changed=True, detail=detail, history=history, watched=watched
        )

    async def _new_events(self, store: ViewerStore) -> tuple[list[Event], int, bool]:
        """Events after the cursor: (events, new cursor, whether more are waiting)."""
        events: list[Event] = []
        last = self._cursor.last_event
        while len(events) < EVENTS_PER_POLL:
            batch = await store.read_events(after_id=last, limit=EVENT_PAGE)
            events.extend(batch)
            if batch:
                last = batch[-1].id
            if len(batch) < EVENT_PAGE:
                return events, last, False
        return events, last, True

    def _absorb(self, runs: list[RunState], now: datetime) -> frozenset[str]:
        """Keep fetched runs: those kept already, running ones, and others the filter lets
        through that are newer than the oldest kept one (an old run that only got a note
        stays out of a full window); then drop the oldest beyond the window. Returns the ids
        of the runs dropped."""
        floor = self._floor if self.truncated else None
        added = False
        for run in runs:
            if run.run_id in self.runs or run.status is RunStatus.RUNNING:
                added = added or run.status is not RunStatus.RUNNING  # may have just ended
                self.runs[run.run_id] = run
            elif self.filter.matches(run, self.word(run, now)) and (
                floor is None or run.updated_at.timestamp() >= floor
            ):
                self.runs[run.run_id] = run
                added = True
        return self._trim() if added else frozenset()

    def _trim(self) -> frozenset[str]:
        """Drop the oldest finished runs beyond the window; returns their ids."""
        spare = [run for run in self.runs.values() if run.status is not RunStatus.RUNNING]
        excess = len(spare) - self.window
        dropped: set[str] = set()
        if excess > 0:
            spare.sort(key=lambda run: (run.updated_at.timestamp(), run.run_id))
            for run in spare[:excess]:
                if run.run_id != self._watched:
                    del self.runs[run.run_id]
                    dropped.add(run.run_id)
            self.truncated = True
            self._floor = spare[excess].updated_at.timestamp()
        return frozenset(dropped)


def _ids(runs: Iterable[RunState]) -> frozenset[str]:
    return frozenset(run.run_id for run in runs)


def _identity(run: RunState) -> tuple[str, int, datetime, datetime | None]:
    """One stored version of a run (every write moves updated_at, the epoch or the lease)."""
    return run.run_id, run.epoch, run.updated_at, run.lease_expires_at


def _lease_ending(run: RunState, now: datetime) -> bool:
    """Whether a heartbeat may have renewed this run's lease since it was read: its cached
    lease ends soon (or ended lately) and its worker may be alive (a worker seen dead on this
    host is crashed whatever its lease says; a run with no worker yet gets a claim event)."""
    lease = run.lease_expires_at
    if lease is None or run.owner is None or owner_alive(run.owner) is False:
        return False
    left = (lease - now).total_seconds()
    return -STALE_LEASE < left < LEASE_MARGIN


def _empty_file(location: str) -> bool:
    try:
        return Path(location).stat().st_size == 0
    except OSError:
        return False


async def _read_detail(store: ViewerStore, run_id: str) -> Detail | None:
    try:
        run, tasks, results = await store.get_run_detail(run_id)
    except RunNotFoundError:
        return None
    pending = None
    if run.status is RunStatus.PAUSED and run.pause_reason is PauseReason.APPROVAL:
        waiting = pending_of(await store.get_approvals(run_id))
        pending = waiting[-1] if waiting else None
    return Detail(run=run, tasks=tuple(tasks), results=results, pending=pending)


async def _read_history(store: ViewerStore, run_id: str) -> tuple[Event, ...]:
    """The run's events (the newest DETAIL_EVENTS of them), oldest first."""
    kept: list[Event] = []
    last = 0
    while True:
        batch = await store.read_events(run_id=run_id, after_id=last, limit=5000)
        kept.extend(batch)
        if len(kept) > DETAIL_EVENTS:
            del kept[: len(kept) - DETAIL_EVENTS]
        if len(batch) < 5000:
            return tuple(kept)
        last = batch[-1].id
