"""``nanoagent watch``: one line per run that enters a watched status (crashed, failed,
paused), and optionally a command run for each, so that people can wire desktop or chat
notifications.

How transitions are noticed, in one loop every :data:`WATCH_INTERVAL` seconds:

* statuses a step stores (``failed``, ``paused``) by their event: the
  loop reads the store's ``change_token()`` (one cheap query) and, only after a change, the
  events after the last one it has seen (``read_events(after_id=...)``: ids grow without
  gaps, so none is missed or seen twice). Each entering event is one transition.
* ``crashed`` writes nothing (the worker is simply gone): the loop lists the stored-running
  runs (an indexed query) and asks of each whether its worker is gone (its pid on this host
  is dead, or its lease expired), as ``list`` does. One crash is one (run, epoch): every
  claim raises the epoch, so a run that crashes again after a resume is a new transition.

Exactly once, also across a restart: a small state file (mode 0600) records the last event
id looked at and, for each run currently crashed, the epoch reported. A transition's line is
printed and its command has finished before the state file records it; a stop (Ctrl-C,
SIGTERM) waits for the transition in hand, so a restarted watch reports nothing twice and
reports what happened while it was down: failures (from their events), and runs that
crashed meanwhile and are still crashed (a crash that was resumed before the watch came back
left no trace). A hard kill of the watch between a report and its record reports that one
again. On the first start (no state file yet) nothing already crashed or failed is reported,
unless ``--all``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, cast

from nanoagent_core.errors import DatabaseError, RunNotFoundError, ValidationError
from nanoagent_core.models import Event, EventKind, RunState, RunStatus, utc_now
from nanoagent_core.paths import MEMORY
from nanoagent_core.procinfo import owner_alive
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus, verdicts

__all__ = [
    "ENTRY_EVENTS",
    "EXEC_TIMEOUT",
    "WATCHABLE",
    "WATCH_INTERVAL",
    "Cursor",
    "Transition",
    "Watcher",
    "default_state_path",
    "exec_seconds",
    "parse_statuses",
    "run_command",
]

#: Seconds between two looks at the database (the change token and the stored-running runs).
WATCH_INTERVAL = 1.0
#: Seconds between two writes of the state file when only the position in the events moved
#: (a transition is written at once; a hard kill then re-reads at most this much).
SAVE_EVERY = 10.0
#: Seconds a ``--exec`` command may take before it (and its process group) is killed.
EXEC_TIMEOUT = 30.0
#: The statuses ``--status`` takes (the default: all of them).
WATCHABLE: tuple[str, ...] = (
    ShownStatus.CRASHED.value,
    RunStatus.FAILED.value,
    RunStatus.PAUSED.value,
)
#: The event a step commits when a run enters a stored status worth a person's attention.
ENTRY_EVENTS: dict[str, str] = {
    EventKind.RUN_FAILED.value: RunStatus.FAILED.value,
    EventKind.RUN_PAUSED.value: RunStatus.PAUSED.value,
}
#: The longest ``--exec-timeout``, in seconds.
MAX_EXEC_TIMEOUT = 3600.0
#: Events read per query.
_PAGE = 1000
#: Version of the state file's layout.
_STATE_VERSION = 1


class WatchStore(Protocol):
    """What watching needs of a store."""

    async def get_run(self, run_id: str) -> RunState: ...

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunState]: ...

    async def list_runs(
        self,
        *,
        statuses: Sequence[RunStatus] | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunState]: ...

    async def read_events(
        self, *, after_id: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[Event]: ...

    async def change_token(self) -> int: ...


def parse_statuses(text: str) -> frozenset[str]:
    """``crashed,failed`` -> the set; ValidationError (exit 2) for anything else."""
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in WATCHABLE]
    if unknown or not any(names):
        raise ValidationError(
            f"--status takes a comma-separated list of {', '.join(WATCHABLE)}, not {text[:80]!r}"
        )
    return frozenset(names)


def exec_seconds(text: str) -> float:
    """An ``--exec-timeout``: a finite number of seconds, more than 0 and at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text[:80]!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_EXEC_TIMEOUT):
        raise argparse.ArgumentTypeError(
            f"--exec-timeout must be more than 0 and at most {MAX_EXEC_TIMEOUT:g}, not {text!r}"
        )
    return value


@dataclass(frozen=True)
class Transition:
    """A run that entered a watched status."""

    run_id: str
    status: str
    reason: str
    goal: str

    def line(self, now: datetime | None = None) -> str:
        """``HH:MM:SS RUN STATUS: REASON  goal: GOAL`` (local time), control characters
        made visible."""
        stamp = (now or utc_now()).astimezone().strftime("%H:%M:%S")
        goal = " ".join(self.goal.split())
        goal = goal if len(goal) <= 80 else goal[:79] + "…"
        return visible(f"{stamp} {self.run_id} {self.status}: {self.reason}  goal: {goal}")

    def environment(self) -> dict[str, str]:
        """What a ``--exec`` command receives (values with control characters visible)."""
        return {
            "NANOAGENT_RUN_ID": self.run_id,
            "NANOAGENT_STATUS": self.status,
            "NANOAGENT_REASON": visible(self.reason),
            "NANOAGENT_GOAL": visible(self.goal),
        }


# -- the state file --------------------------------------------------------------------------


def database_key(location: str) -> str:
    """A fingerprint of the database (a URL's password never lands in the state file)."""
    if not location.startswith(("postgres://", "postgresql://")):
        location = str(Path(location).expanduser().resolve())
    return hashlib.sha256(location.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def default_state_path(location: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/nanoagent/watch-<fingerprint>.json`` (``~/.local/state`` when unset):
    one state file per database."""
    environ = os.environ if env is None else env
    state_home = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "nanoagent" / f"watch-{database_key(location)[:16]}.json"


@dataclass
class Cursor:
    """What has been reported: all events up to ``last_event_id`` were looked at, and each run
    in ``crashed`` was reported crashed at that epoch."""

    path: Path
    database: str
    last_event_id: int = 0
    crashed: dict[str, int] = field(default_factory=dict[str, int])
    fresh: bool = True  #: no state file existed
    _lock: int | None = None

    @classmethod
    def open(cls, path: Path, database: str) -> Cursor:
        """Read (or start) the state file and lock it against a second watch."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ValidationError(f"cannot use state file {str(path)!r}: {exc.strerror}") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            raise ValidationError(
                f"another 'nanoagent watch' uses the state file {str(path)!r}"
            ) from None
        try:
            cursor = cls._read(path, database)
        except BaseException:
            os.close(lock)
            raise
        cursor._lock = lock
        return cursor

    @classmethod
    def _read(cls, path: Path, database: str) -> Cursor:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path, database)
        except OSError as exc:
            raise ValidationError(f"cannot read state file {str(path)!r}: {exc.strerror}") from None
        bad = ValidationError(f"state file {str(path)!r} is not a nanoagent watch state file")
        try:
            loaded: object = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad from None
        if not isinstance(loaded, dict):
            raise bad
        doc = cast(dict[str, object], loaded)
        last = doc.get("last_event_id")
        crashed = doc.get("crashed")
        if doc.get("version") != _STATE_VERSION or type(last) is not int or last < 0:
            raise bad
        if not isinstance(crashed, dict):
            raise bad
        epochs = cast(dict[object, object], crashed)
        runs: dict[str, int] = {}
        for run_id, epoch in epochs.items():
            if not isinstance(run_id, str) or type(epoch) is not int:
                raise bad
            runs[run_id] = epoch
        if doc.get("database") != database:
            raise ValidationError(f"state file {str(path)!r} belongs to another database")
        return cls(path, database, last, runs, fresh=False)

    def save(self) -> None:
        """Write the state atomically (a new 0600 file renamed over the old one)."""
        doc = {
            "version": _STATE_VERSION,
            "database": self.database,
            "last_event_id": self.last_event_id,
            "crashed": self.crashed,
        }
        data = json.dumps(doc, sort_keys=True).encode()
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self.fresh = False

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


# -- the commands ----------------------------------------------------------------------------


async def run_command(
    argv: Sequence[str],
    transition: Transition,
    *,
    timeout: float = EXEC_TIMEOUT,
    warn: Callable[[str], None],
) -> None:
    """Run ``argv`` (no shell) with the transition in its environment, its stdout sent to our
    stderr; a failure, or a command killed after ``timeout`` seconds, is one line to ``warn``."""
    what = f"'{visible(argv[0])}' for run {transition.run_id} ({transition.status})"
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env={**os.environ, **transition.environment()},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),
            start_new_session=True,  # a Ctrl-C at the terminal is for the watch, not for it
        )
    except OSError as exc:
        warn(f"cannot start {what}: {exc.strerror or exc}")
        return
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        warn(f"{what} killed after {timeout:g} s")
        return
    if code < 0:
        warn(f"{what} was killed by signal {-code}")
    elif code:
        warn(f"{what} failed with exit status {code}")


# -- the watcher -----------------------------------------------------------------------------


def stored_reason(run: RunState) -> str:
    """Why a run is in its stored status: the pause reason (and detail) of a paused run,
    else its error."""
    if run.status is RunStatus.PAUSED and run.pause_reason is not None:
        reason = run.pause_reason.value
        return f"{reason}: {run.pause_detail}" if run.pause_detail else reason
    return run.error or ""


def crash_reason(run: RunState) -> str:
    if run.owner is None:
        return "no worker claimed it before its lease ran out"
    if owner_alive(run.owner) is False:
        return f"its worker (pid {run.owner.pid} on {run.owner.host}) is gone"
    return f"the lease of its worker (pid {run.owner.pid} on {run.owner.host}) ran out"


Report = Callable[[Transition], Awaitable[None]]


class Watcher:
    """Finds the transitions into ``statuses`` and hands each to ``report`` once, recording it
    in ``cursor`` after ``report`` returns. Stops between two transitions once ``stop`` is
    set."""

    def __init__(
        self,
        store: WatchStore,
        cursor: Cursor,
        statuses: frozenset[str],
        report: Report,
        stop: asyncio.Event,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._cursor = cursor
        self._statuses = statuses
        self._report = report
        self._stop = stop
        self._now = now
        self._token: int | None = None
        self._unsaved = False
        self._saved_at = time.monotonic()

    async def start(self, *, report_existing: bool) -> None:
        """On a first start, skip (or with ``report_existing``, report) what is already in a
        watched status; then record where the watch begins."""
        if not self._cursor.fresh:
            return
        last = 0
        while batch := await self._store.read_events(after_id=last, limit=_PAGE * 10):
            last = batch[-1].id
        self._cursor.last_event_id = last
        if report_existing:
            stored = [RunStatus(s) for s in ENTRY_EVENTS.values() if s in self._statuses]
            if stored:
                for run in await self._store.list_runs(statuses=stored, limit=1 << 62):
                    if self._stop.is_set():
                        return
                    await self._report(Transition(run.run_id, run.status.value,
                                                  stored_reason(run), run.goal))  # fmt: skip
        await self.crashes(report=report_existing)
        self._cursor.save()

    async def step(self) -> None:
        """One look: new events after a change of the token, then the crashed runs."""
        token = await self._store.change_token()
        if token != self._token:
            self._token = token
            await self.events()
        if not self._stop.is_set():
            await self.crashes(report=True)
        if self._unsaved and time.monotonic() - self._saved_at >= SAVE_EVERY:
            self._save()

    def _save(self) -> None:
        self._cursor.save()
        self._unsaved = False
        self._saved_at = time.monotonic()

    async def events(self) -> None:
        while not self._stop.is_set():
            batch = await self._store.read_events(after_id=self._cursor.last_event_id, limit=_PAGE)
            for event in batch:
                if self._stop.is_set():
                    return
                status = ENTRY_EVENTS.get(event.kind)
                if status in self._statuses:
                    await self._report(await self._entered(event, status))
                    self._cursor.last_event_id = event.id
                    self._save()
                else:
                    self._cursor.last_event_id = event.id
                    self._unsaved = True
            if len(batch) < _PAGE:
                return

    async def _entered(self, event: Event, status: str) -> Transition:
        data = event.data
        reason = data.get("reason") or data.get("error") or ""
        if event.kind == EventKind.RUN_PAUSED and data.get("detail"):
            reason = f"{reason}: {data['detail']}"  # budget: 1,234 of 1,000 tokens spent
        try:
            goal = (await self._store.get_run(event.run_id)).goal
        except RunNotFoundError:  # the run is gone: still worth the line
            goal = ""
        return Transition(event.run_id, status, str(reason), goal)

    async def crashes(self, *, report: bool) -> None:
        """Report each stored-running run whose worker is gone, once per epoch; forget runs
        no longer stored running at the reported epoch (their crash cannot come back)."""
        watched = ShownStatus.CRASHED.value in self._statuses
        if not watched and not self._cursor.crashed:
            return
        running = await self._store.list_runs(statuses=[RunStatus.RUNNING], limit=1 << 62)
        epochs = {run.run_id: run.epoch for run in running}
        for run_id, epoch in list(self._cursor.crashed.items()):
            if epochs.get(run_id) != epoch:
                del self._cursor.crashed[run_id]
                self._unsaved = True
        if not watched:
            return
        # crashed only on a row read after its worker was seen gone (a row read just before
        # a worker's final commit would otherwise look crashed): status.verdicts reads again
        judged = await verdicts(self._store, running, self._now())
        for run, shown in judged:
            if self._stop.is_set():
                return
            if (
                shown is not ShownStatus.CRASHED
                or self._cursor.crashed.get(run.run_id) == run.epoch
            ):
                continue
            if report:
                await self._report(Transition(run.run_id, ShownStatus.CRASHED.value,
                                              crash_reason(run), run.goal))  # fmt: skip
            self._cursor.crashed[run.run_id] = run.epoch
            self._save()

    async def run(
        self, interval: float = WATCH_INTERVAL, *, warn: Callable[[str], None] | None = None
    ) -> None:
        """Look every ``interval`` seconds until ``stop`` is set. A database error (locked,
        the server restarting) is one line to ``warn`` and the next look tries again."""
        failing = False
        while not self._stop.is_set():
            try:
                await self.step()
                failing = False
            except DatabaseError as exc:
                if warn is None:
                    raise
                if not failing:
                    warn(f"{exc} (trying again every {interval:g} s)")
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
        if self._unsaved:
            self._save()


def check_location(location: str) -> None:
    if location == MEMORY:
        raise ValidationError("watch follows a database that workers share; pass --db PATH")
