"""The SQLite store's queue: claims of queued runs (oldest first) and recovery of crashed
runs, each one ``BEGIN IMMEDIATE`` transaction (the write lock makes choosing and claiming
one step, so racing processes get one winner per run). SQLite pushes nothing: idle pool
workers poll."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from nanoagent_core import store_rules as rules
from nanoagent_core.models import Owner, RunState, check_run_id
from nanoagent_core.sqlite import ops, sql

__all__ = ["SQLiteQueue"]

T = TypeVar("T")


class SQLiteQueue:
    """QueueStore for :class:`nanoagent_core.sqlite.store.SQLiteStore` (a base class)."""

    if TYPE_CHECKING:

        async def _write(self, fn: Callable[..., T], *args: Any) -> T: ...

        def _now(self) -> float: ...

    async def claim_next(self, owner: Owner, *, lease_seconds: float) -> RunState | None:
        claimed = await self.claim_queued(owner, lease_seconds=lease_seconds, limit=1)
        return claimed[0] if claimed else None

    async def claim_queued(
        self, owner: Owner, *, lease_seconds: float, limit: int
    ) -> list[RunState]:
        now = self._now()
        params = {
            **rules.owner_params(owner),
            "now": now,
            "lease": now + lease_seconds,
            "limit": max(0, limit),
        }

        def txn(conn: sqlite3.Connection) -> list[RunState]:
            rows = conn.execute(sql.CLAIM_QUEUED, params).fetchall()
            claimed = sorted((ops.run_from_row(row) for row in rows), key=rules.queue_order)
            events = [
                event
                for run in claimed
                for event in ops.event_params(run.run_id, now, [rules.claimed_event(run, owner)])
            ]
            conn.executemany(sql.INSERT_EVENT, events)
            return claimed

        return await self._write(txn)

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
        now = self._now()
        params = {
            "run_id": run_id,
            **rules.owner_params(owner),
            "now": now,
            "lease": now + lease_seconds,
            "expected_epoch": expected_epoch,
            "owner_gone": owner_gone,
        }

        def txn(conn: sqlite3.Connection) -> RunState:
            row = conn.execute(sql.CLAIM_CRASHED, params).fetchone()
            if row is None:
                raise ops.claim_refusal(conn, run_id, expected_epoch)
            claimed = ops.run_from_row(row)
            (restarts,) = conn.execute(sql.COUNT_RESTARTS, (run_id,)).fetchone()
            if restarts >= budget:
                reason = rules.budget_spent(run_id, restarts)
                failed = conn.execute(
                    sql.FAIL_CLAIMED, {"run_id": run_id, "now": now, "reason": reason}
                ).fetchone()
                event = rules.budget_failed_event(claimed, reason)
                conn.executemany(sql.INSERT_EVENT, ops.event_params(run_id, now, [event]))
                return ops.run_from_row(failed)
            events = [
                rules.restarted_event(claimed, owner, restarts + 1, budget),
                rules.claimed_event(claimed, owner),
            ]
            conn.executemany(sql.INSERT_EVENT, ops.event_params(run_id, now, events))
            return claimed

        return await self._write(txn)

    async def wait_for_queue(self, timeout: float) -> bool:
        """False after ``timeout``: SQLite pushes nothing (the caller polls)."""
        await asyncio.sleep(timeout)
        return False

    async def announce_queued(self) -> None:
        """Nothing to do: waiting pool workers poll."""
