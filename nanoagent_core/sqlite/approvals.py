"""The SQLite store's approval requests (approvals.py): recorded inside a step's transaction
(:func:`record_txn`), read, and decided once in a transaction of their own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from nanoagent_core import approvals as rules
from nanoagent_core.approvals import ApprovalRequest
from nanoagent_core.models import EventKind, check_run_id
from nanoagent_core.protocols import NewEvent
from nanoagent_core.rows import approval_from_row
from nanoagent_core.sqlite import ops, sql

__all__ = ["ApprovalMethods", "record_txn"]

T = TypeVar("T")


def record_txn(conn: sqlite3.Connection, request: ApprovalRequest, now: float) -> None:
    """Inside a step's transaction: the request stored (kept as it is when already there)
    and the run's other pending requests expired."""
    params = {**rules.request_params(request), "now": now}
    conn.execute(sql.EXPIRE_APPROVALS, params)
    conn.execute(sql.INSERT_APPROVAL, params)


def _select(conn: sqlite3.Connection, run_id: str, request_id: str) -> ApprovalRequest | None:
    row = conn.execute(sql.SELECT_APPROVAL, (run_id, request_id)).fetchone()
    return None if row is None else approval_from_row(row, ops.dt)


class ApprovalMethods:
    """Mixed into SQLiteStore, whose plumbing these call."""

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:  # pragma: no cover
        raise NotImplementedError

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:  # pragma: no cover
        raise NotImplementedError

    def _now(self) -> float:  # pragma: no cover
        raise NotImplementedError

    async def get_approvals(self, run_id: str) -> list[ApprovalRequest]:
        check_run_id(run_id)

        def read(conn: sqlite3.Connection) -> list[ApprovalRequest]:
            rows = conn.execute(sql.SELECT_APPROVALS, (run_id,))
            return [approval_from_row(row, ops.dt) for row in rows]

        return await self._read(read)

    async def decide_approval(
        self,
        run_id: str,
        request_id: str,
        *,
        approve: bool,
        digest: str | None = None,
        reason: str | None = None,
    ) -> ApprovalRequest:
        check_run_id(run_id)
        now = self._now()
        params = {
            "run_id": run_id,
            "request_id": request_id,
            "decision": rules.decision_value(approve).value,
            "reason": rules.clean_reason(reason),
            "now": now,
        }

        def txn(conn: sqlite3.Connection) -> ApprovalRequest:
            rules.check_decidable(run_id, request_id, _select(conn, run_id, request_id), digest)
            conn.execute(sql.DECIDE_APPROVAL, params)
            decided = _select(conn, run_id, request_id)
            assert decided is not None
            event = NewEvent(kind=EventKind.APPROVAL_DECIDED, data=rules.decided_data(decided))
            conn.executemany(sql.INSERT_EVENT, ops.event_params(run_id, now, [event]))
            conn.execute(sql.TOUCH_RUN_ANY, (now, run_id))
            return decided

        return await self._write(txn)
