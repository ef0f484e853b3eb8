"""The memory store's queue: claims of queued runs (oldest first), recovery of crashed runs,
and a wake-up for idle pool workers of this process when a run is queued. Each method does
its work between two awaits, so it is atomic as a transaction is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nanoagent_core import store_rules as rules
from nanoagent_core.models import Event, EventKind, Owner, RunState, RunStatus, check_run_id
from nanoagent_core.protocols import NewEvent

__all__ = ["MemoryQueue"]


class MemoryQueue:
    """QueueStore for :class:`nanoagent_core.memory_store.MemoryStore` (a base class)."""

    if TYPE_CHECKING:
        _runs: dict[str, RunState]
        _events: list[Event | None]
        _clock: Callable[[], datetime]

        def _check_open(self) -> None: ...

        def _run(self, run_id: str) -> RunState: ...

        def _put(self, run: RunState, **changes: Any) -> RunState: ...

        def _emit(self, run_id: str, now: datetime, events: Sequence[NewEvent]) -> None: ...

    _queued_news: asyncio.Event | None = None

    def _queue_news(self) -> asyncio.Event:
        if self._queued_news is None:
            self._queued_news = asyncio.Event()
        return self._queued_news

    async def claim_next(self, owner: Owner, *, lease_seconds: float) -> RunState | None:
        self._check_open()
        queued = [
            run
            for run in self._runs.values()
            if run.status is RunStatus.QUEUED and run.abort_requested_at is None
        ]
        if not queued:
            return None
        run = min(queued, key=rules.queue_order)
        now = self._clock()
        claimed = self._put(
            run,
            owner=owner,
            epoch=run.epoch + 1,
            status=RunStatus.RUNNING,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            finished_at=None,
            error=None,
            updated_at=now,
        )
        self._emit(run.run_id, now, [rules.claimed_event(claimed, owner)])
        return claimed

    async def claim_queued(
        self, owner: Owner, *, lease_seconds: float, limit: int
    ) -> list[RunState]:
        claimed: list[RunState] = []
        while len(claimed) < limit:
            run = await self.claim_next(owner, lease_seconds=lease_seconds)
            if run is None:
                break
            claimed.append(run)
        return claimed

    async def recover_run(
        self,
        run_id: str,
        owner: Owner,
        *,
        expected_epoch: int,
        lease_seconds: float,
        owner_gone: bool,
        budget: int,
    ) -> RunState:
        self._check_open()
        check_run_id(run_id)
        rules.check_budget(budget)
        run = self._run(run_id)
        now = self._clock()
        free = (
            run.owner is None
            or run.lease_expires_at is None
            or run.lease_expires_at <= now
            or owner_gone
        )
        if run.epoch != expected_epoch or run.status is not RunStatus.RUNNING or not free:
            raise rules.claim_refusal(run_id, run, expected_epoch)
        restarts = sum(
            1
            for event in self._events
            if event is not None
            and event.run_id == run_id
            and event.kind == EventKind.RUN_RESTARTED
        )
        if restarts >= budget:
            reason = rules.budget_spent(run_id, restarts)
            failed = self._put(
                run,
                epoch=run.epoch + 1,
                status=RunStatus.FAILED,
                owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
                error=reason,
            )
            self._emit(run_id, now, [rules.budget_failed_event(failed, reason)])
            return failed
        claimed = self._put(
            run,
            owner=owner,
            epoch=run.epoch + 1,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        events = [
            rules.restarted_event(claimed, owner, restarts + 1, budget),
            rules.claimed_event(claimed, owner),
        ]
        self._emit(run_id, now, events)
        return claimed

    async def wait_for_queue(self, timeout: float) -> bool:
        news = self._queue_news()
        try:
            await asyncio.wait_for(news.wait(), timeout)
        except TimeoutError:
            return False
        news.clear()
        return True

    async def announce_queued(self) -> None:
        self._queue_news().set()
