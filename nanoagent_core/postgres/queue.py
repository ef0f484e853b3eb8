"""The PostgreSQL store's queue: claims of queued runs (oldest first, ``FOR UPDATE SKIP
LOCKED``, by the database's clock), recovery of crashed runs, and LISTEN on the queue's
channel so that idle pool workers on any host wake when a run is enqueued."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from nanoagent_core import store_rules as rules
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import Owner, RunState, check_run_id
from nanoagent_core.postgres import ops, sql_queue
from nanoagent_core.postgres.connection import Stmt, Txn, encoded
from nanoagent_core.postgres.listener import Listener

if TYPE_CHECKING:
    from nanoagent_core import rows

__all__ = ["PostgresQueue"]

T = TypeVar("T")


class PostgresQueue:
    """QueueStore for :class:`nanoagent_core.postgres.store.PostgresStore` (a base class)."""

    if TYPE_CHECKING:
        _schema: str
        _conninfo: str
        _kwargs: dict[str, Any]
        _connect_timeout: float
        _location: str

        async def _write(
            self, body: Callable[[Txn], Awaitable[T]], recover: Callable[[str], Awaitable[T]]
        ) -> T: ...

        async def _one(
            self, txn: Txn, template: str, params: dict[str, Any]
        ) -> rows.Row | None: ...

        async def _commit(
            self,
            txn: Txn,
            run_id: str,
            events: Any = (),
            statements: Any = (),
        ) -> list[list[rows.Row]]: ...

        async def _claim_refusal(
            self, t: Txn, run_id: str, expected_epoch: int
        ) -> NanoagentError: ...

        async def _read(self, body: Callable[[Txn], Awaitable[T]]) -> T: ...

        def _reread(self, run_id: str) -> Callable[[str], Awaitable[RunState]]: ...

        def _check_open(self) -> None: ...

    _queue_listener: Listener | None = None

    async def claim_next(self, owner: Owner, *, lease_seconds: float) -> RunState | None:
        params = {
            **rules.owner_params(owner),
            "lease": timedelta(seconds=lease_seconds),
        }

        async def txn(t: Txn) -> RunState | None:
            row = await self._one(t, sql_queue.CLAIM_NEXT, params)
            if row is None:
                return None
            claimed = ops.run_from_row(row)
            event = rules.claimed_event(claimed, owner)
            await self._commit(t, claimed.run_id, encoded([event]))
            return claimed

        async def lost(xid: str) -> RunState | None:
            # The claim committed but its answer was lost: the run is ours on paper only;
            # its lease runs out and recovery (or a resume) takes it up.
            return None

        return await self._write(txn, lost)

    async def claim_queued(
        self, owner: Owner, *, lease_seconds: float, limit: int
    ) -> list[RunState]:
        """One transaction per run (a write's events belong to one run here)."""
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
        check_run_id(run_id)
        rules.check_budget(budget)
        params = {
            "run_id": run_id,
            **rules.owner_params(owner),
            "lease": timedelta(seconds=lease_seconds),
            "expected_epoch": expected_epoch,
            "owner_gone": owner_gone,
        }

        async def txn(t: Txn) -> RunState:
            row = await self._one(t, sql_queue.CLAIM_CRASHED, params)
            if row is None:
                raise await self._claim_refusal(t, run_id, expected_epoch)
            claimed = ops.run_from_row(row)
            counted = await self._one(t, sql_queue.COUNT_RESTARTS, {"run_id": run_id})
            restarts = 0 if counted is None else int(counted[0])
            if restarts >= budget:
                reason = rules.budget_spent(run_id, restarts)
                fail: list[Stmt] = [(sql_queue.FAIL_CLAIMED, {"run_id": run_id, "reason": reason})]
                event = rules.budget_failed_event(claimed, reason)
                (failed,) = await self._commit(t, run_id, encoded([event]), fail)
                return ops.run_from_row(failed[0])
            events = [
                rules.restarted_event(claimed, owner, restarts + 1, budget),
                rules.claimed_event(claimed, owner),
            ]
            await self._commit(t, run_id, encoded(events))
            return claimed

        return await self._write(txn, self._reread(run_id))

    async def wait_for_queue(self, timeout: float) -> bool:
        """True when a NOTIFY on the queue's channel came (a run was enqueued, here or on
        another host), False after ``timeout`` (also while the listener is reconnecting:
        the caller polls meanwhile)."""
        self._check_open()
        listener = self._queue_listener
        if listener is None:
            kwargs = dict(self._kwargs)
            if "application_name" in kwargs:
                kwargs["application_name"] += "/queue"
            listener = self._queue_listener = Listener(
                self._conninfo,
                kwargs,
                sql_queue.queue_channel(self._schema),
                connect_timeout=self._connect_timeout,
                ping=5.0,
                where=self._location,
            )
            listener.start()
        try:
            await asyncio.wait_for(listener.notified.wait(), timeout)
        except TimeoutError:
            return False
        listener.notified.clear()
        return True

    async def queue_listening(self, timeout: float) -> bool:
        """Start listening on the queue's channel (if not yet) and wait at most ``timeout``
        for the listener's connection: True once it listens."""
        if self._queue_listener is None:
            await self.wait_for_queue(0)
        listener = self._queue_listener
        assert listener is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listener.ready.wait(), timeout)
        return listener.connected

    async def announce_queued(self) -> None:
        """One NOTIFY outside any transaction (delivered at once)."""
        params = {"queue": sql_queue.queue_channel(self._schema), "run_id": ""}

        async def notify(t: Txn) -> None:
            await self._one(t, sql_queue.NOTIFY_QUEUE, params)

        await self._read(notify)

    async def _stop_queue_listener(self) -> None:
        if self._queue_listener is not None:
            await self._queue_listener.stop()
            self._queue_listener = None
