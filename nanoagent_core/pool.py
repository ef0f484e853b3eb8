"""A pool worker: one long-running process driving many runs at once in one asyncio loop.

* Each run it drives has its own lease, heartbeat, fencing and abort handling, exactly as a
  lone worker's (nanoagent_core.worker.drive); they share the process's one store (one
  SQLite connection on its thread; one PostgreSQL connection pool).
* It claims queued runs oldest first (``QueueStore.claim_next``: one winner per run across
  processes and hosts) while it has free slots (``concurrency``). When idle it waits for news
  of an enqueued run: PostgreSQL's NOTIFY wakes it at once; every ``poll`` seconds it looks
  anyway (SQLite pushes nothing; a missed notification is caught up).
* With ``recover`` it also takes up crashed runs (stored running; lease expired by the
  store's clock, or a dead pid on this host), each restart an event, at most
  ``restart_budget`` restarts per run: the next crash ends the run ``failed``.
* :meth:`Pool.drain` (the first SIGTERM) stops claiming, lets every step in flight finish
  and commit, then records each run interrupted and queued again, for any pool worker to take
  up. :meth:`Pool.halt` (a second SIGTERM) stops the steps in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from nanoagent_core import store_rules as rules
from nanoagent_core.agents.registry import load_agent
from nanoagent_core.defaults import DEFAULT_HEARTBEAT, lease_seconds
from nanoagent_core.errors import (
    LeaseLostError,
    NanoagentError,
    RunBusyError,
    RunFinishedError,
    ValidationError,
)
from nanoagent_core.logs import safe_text
from nanoagent_core.loop import DEFAULT_MAX_FAILURES, Loop
from nanoagent_core.models import EventKind, Owner, RunState, RunStatus
from nanoagent_core.procinfo import Liveness, current_owner, owner_liveness
from nanoagent_core.protocols import NewEvent, QueueStore, Step
from nanoagent_core.status import held_by_live_worker
from nanoagent_core.worker import WorkerStore, drive, fault_in_body, fault_injector

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_POLL", "Pool", "PoolOptions", "PoolStats", "PoolStore"]

#: Runs one pool worker drives at once unless told (``worker --concurrency``).
DEFAULT_CONCURRENCY = 100
#: Seconds between looks at the queue while idle (a notification wakes it earlier).
DEFAULT_POLL = 1.0
#: The most queued runs claimed in one go (one transaction on SQLite).
_CLAIM_BATCH = 100
#: The most crashed runs one recovery scan reads.
_SCAN_LIMIT = 10_000

_log = logging.getLogger(__name__)


class PoolStore(WorkerStore, QueueStore, Protocol):
    """What a pool worker needs of a store."""


@dataclass(frozen=True)
class PoolOptions:
    concurrency: int = DEFAULT_CONCURRENCY
    heartbeat: float = DEFAULT_HEARTBEAT
    poll: float = DEFAULT_POLL
    recover: bool = False
    restart_budget: int = rules.DEFAULT_RESTART_BUDGET
    max_failures: int = DEFAULT_MAX_FAILURES
    #: stop once nothing is in flight and the queue is empty (benches and batch jobs)
    until_idle: bool = False

    def check(self) -> None:
        if self.concurrency < 1:
            raise ValidationError(f"concurrency must be 1 or more, not {self.concurrency}")
        for name in ("heartbeat", "poll"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValidationError(f"{name} must be a positive number of seconds, not {value!r}")
        rules.check_budget(self.restart_budget)


@dataclass
class PoolStats:
    """What a pool did (printed when it stops)."""

    claimed: int = 0  #: queued runs it claimed
    recovered: int = 0  #: crashed runs it took up again
    gave_up: int = 0  #: crashed runs it ended failed (restart budget spent)
    completed: int = 0
    failed: int = 0
    aborted: int = 0
    released: int = 0  #: runs stopped by drain/halt, queued again
    lost: int = 0  #: runs another worker took over (lease lost)
    errors: int = 0  #: runs that ended in an unexpected error
    notified: int = 0  #: wake-ups by a queue notification (PostgreSQL NOTIFY)
    peak: int = 0  #: the most runs in flight at once
    ended: dict[str, RunStatus] = field(default_factory=dict[str, RunStatus])

    def line(self) -> str:
        return (
            f"claimed {self.claimed}, recovered {self.recovered}, completed {self.completed},"
            f" failed {self.failed}, aborted {self.aborted}, released {self.released},"
            f" lost {self.lost}, gave up {self.gave_up}, errors {self.errors},"
            f" woken by notification {self.notified}, peak in flight {self.peak}"
        )


class Pool:
    """Drives queued (and, with ``recover``, crashed) runs of ``store`` until drained."""

    def __init__(self, store: PoolStore, options: PoolOptions | None = None) -> None:
        self._store = store
        self._options = options or PoolOptions()
        self._options.check()
        self._owner = current_owner()
        self._active: dict[str, asyncio.Task[None]] = {}
        self._drain = asyncio.Event()
        self._halt = asyncio.Event()
        self._wake = asyncio.Event()
        self._next_scan = 0.0
        self.stats = PoolStats()

    @property
    def owner(self) -> Owner:
        """Who this pool is, as recorded in the runs it holds."""
        return self._owner

    @property
    def in_flight(self) -> int:
        return len(self._active)

    def drain(self) -> None:
        """Stop claiming; let the steps in flight finish, then release their runs."""
        if not self._drain.is_set():
            _log.info("pool pid %d: draining %d runs", self._owner.pid, len(self._active))
        self._drain.set()
        self._wake.set()

    def halt(self) -> None:
        """Stop the steps in flight at once and release their runs."""
        self.drain()
        self._halt.set()

    async def run(self) -> PoolStats:
        listener = asyncio.ensure_future(self._listen())
        try:
            await self._serve()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            if self._active:
                await asyncio.gather(*self._active.values(), return_exceptions=True)
            if self.stats.released:
                with contextlib.suppress(NanoagentError):
                    await self._store.announce_queued()
        return self.stats

    async def _serve(self) -> None:
        options = self._options
        while not self._drain.is_set():
            self._wake.clear()
            found = await self._fill()
            if options.recover and time.monotonic() >= self._next_scan:
                found += await self._recover()
                self._next_scan = time.monotonic() + options.heartbeat
            if options.until_idle and not found and not self._active:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), options.poll)

    async def _listen(self) -> None:
        """Wake the pool when the store says a run was queued."""
        while True:
            try:
                heard = await self._store.wait_for_queue(max(self._options.poll, 1.0))
            except NanoagentError as exc:
                _log.warning("pool: cannot wait for the queue (%s)", safe_text(exc))
                await asyncio.sleep(self._options.poll)
                continue
            if heard:
                self.stats.notified += 1
                _log.info("pool pid %d: woken by a queue notification", self._owner.pid)
                self._wake.set()

    def _free(self) -> int:
        return self._options.concurrency - len(self._active)

    async def _fill(self) -> int:
        """Claim queued runs while slots are free (in batches); how many it claimed."""
        took = 0
        while self._free() > 0 and not self._drain.is_set():
            try:
                runs = await self._store.claim_queued(
                    self._owner,
                    lease_seconds=lease_seconds(self._options.heartbeat),
                    limit=min(self._free(), _CLAIM_BATCH),
                )
            except NanoagentError as exc:
                _log.warning("pool: claiming queued runs failed (%s)", safe_text(exc))
                return took
            for run in runs:
                took += 1
                self.stats.claimed += 1
                _log.info("run %s: claimed from the queue (epoch %d)", run.run_id, run.epoch)
                self._start(run)
            if not runs:
                return took
        return took

    async def _recover(self) -> int:
        """Take up crashed runs while slots are free; how many it took up or ended."""
        try:
            running = await self._store.list_runs(statuses=[RunStatus.RUNNING], limit=_SCAN_LIMIT)
        except NanoagentError as exc:
            _log.warning("pool: looking for crashed runs failed (%s)", safe_text(exc))
            return 0
        took = 0
        for run in running:
            if self._free() <= 0 or self._drain.is_set():
                break
            if run.run_id in self._active or held_by_live_worker(run):
                continue
            taken = await self._recover_one(run)
            took += taken is not None
        return took

    async def _recover_one(self, run: RunState) -> RunState | None:
        gone = run.owner is not None and owner_liveness(run.owner) is Liveness.GONE
        try:
            if run.abort_requested_at is not None:  # its worker died before acting on it
                return await self._store.abort_unowned(
                    run.run_id,
                    expected_epoch=run.epoch,
                    reason="aborted on request (its worker ended before acting on it)",
                )
            taken = await self._store.recover_run(
                run.run_id,
                self._owner,
                expected_epoch=run.epoch,
                lease_seconds=lease_seconds(self._options.heartbeat),
                owner_gone=gone,
                budget=self._options.restart_budget,
            )
        except (RunBusyError, RunFinishedError):
            return None  # another worker took it, its own came back, or it ended meanwhile
        except NanoagentError as exc:
            _log.warning("run %s: recovery failed (%s)", run.run_id, safe_text(exc))
            return None
        if taken.status is RunStatus.FAILED:
            self.stats.gave_up += 1
            _log.warning("run %s: %s", run.run_id, safe_text(taken.error or "failed"))
            return taken
        self.stats.recovered += 1
        _log.info("run %s: crashed run taken up again (epoch %d)", run.run_id, taken.epoch)
        self._start(taken)
        return taken

    def _start(self, run: RunState) -> None:
        task = asyncio.ensure_future(self._drive(run))
        self._active[run.run_id] = task
        self.stats.peak = max(self.stats.peak, len(self._active))

        def done(_: asyncio.Task[None]) -> None:
            self._active.pop(run.run_id, None)
            self._wake.set()

        task.add_done_callback(done)

    async def _drive(self, run: RunState) -> None:
        store, options = self._store, self._options
        try:
            try:
                agent = fault_in_body(load_agent(run.agent, run.agent_options))
            except NanoagentError as exc:
                await self._fail(run, f"cannot rebuild agent {run.agent!r}: {exc}")
                return
            loop = Loop(
                store, run, agent, max_failures=options.max_failures, on_step=fault_injector(None)
            )
            ended = await drive(
                store,
                loop,
                heartbeat=options.heartbeat,
                handle_signals=False,
                drain=self._drain,
                halt=self._halt,
                requeue=True,
            )
        except LeaseLostError as exc:
            self.stats.lost += 1
            _log.warning("run %s: %s", run.run_id, safe_text(exc))
            return
        except Exception as exc:
            self.stats.errors += 1
            _log.error("run %s: %s: %s", run.run_id, type(exc).__name__, safe_text(exc))
            return
        self._count(ended)

    def _count(self, ended: RunState) -> None:
        stats = self.stats
        stats.ended[ended.run_id] = ended.status
        if ended.status is RunStatus.COMPLETED:
            stats.completed += 1
        elif ended.status is RunStatus.FAILED:
            stats.failed += 1
        elif ended.status is RunStatus.ABORTED:
            stats.aborted += 1
        else:
            stats.released += 1
        _log.info("run %s: %s", ended.run_id, ended.status)

    async def _fail(self, run: RunState, message: str) -> None:
        step = Step(
            phase=run.phase,
            iteration=run.iteration,
            current_task_id=run.current_task_id,
            status=RunStatus.FAILED,
            error=message,
            events=(NewEvent(kind=EventKind.RUN_FAILED, data={"error": message}),),
        )
        self._count(await self._store.commit_step(run.run_id, step, epoch=run.epoch))
