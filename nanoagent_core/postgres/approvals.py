"""The PostgreSQL store's approval requests (approvals.py): recorded in a step's pipeline
(:func:`record_statements`), read, and decided once in a transaction of their own."""

from __future__ import annotations

from nanoagent_core import approvals as rules
from nanoagent_core.approvals import ApprovalRequest
from nanoagent_core.models import EventKind, check_run_id
from nanoagent_core.postgres import ops
from nanoagent_core.postgres import sql_approvals as sql
from nanoagent_core.postgres.connection import Engine, Stmt, Txn, encoded
from nanoagent_core.protocols import NewEvent
from nanoagent_core.rows import Row, approval_from_row

__all__ = ["ApprovalMethods", "record_statements"]


def _from_row(row: Row) -> ApprovalRequest:
    return approval_from_row(row, ops.aware)


def record_statements(request: ApprovalRequest) -> list[Stmt]:
    """A step's statements that store the request (kept as it is when already there) and
    expire the run's other pending requests."""
    params = rules.request_params(request)
    return [(sql.EXPIRE_APPROVALS, params), (sql.INSERT_APPROVAL, params)]


class ApprovalMethods(Engine):
    async def get_approvals(self, run_id: str) -> list[ApprovalRequest]:
        check_run_id(run_id)

        async def read(t: Txn) -> list[ApprovalRequest]:
            (cur,) = await self._batch(t, [(sql.SELECT_APPROVALS, {"run_id": run_id})])
            return [_from_row(row) for row in await cur.fetchall()]

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
        wanted = {"run_id": run_id, "request_id": request_id}
        params = {
            **wanted,
            "decision": rules.decision_value(approve).value,
            "reason": rules.clean_reason(reason),
        }

        async def txn(t: Txn) -> ApprovalRequest:
            (cur,) = await self._batch(t, [(sql.SELECT_APPROVAL_FOR_UPDATE, wanted)])
            row = await cur.fetchone()
            rules.check_decidable(
                run_id, request_id, None if row is None else _from_row(row), digest
            )
            (cur,) = await self._batch(t, [(sql.DECIDE_APPROVAL, params)])
            row = await cur.fetchone()
            assert row is not None
            decided = _from_row(row)
            event = NewEvent(kind=EventKind.APPROVAL_DECIDED, data=rules.decided_data(decided))
            await self._commit(
                t, run_id, encoded([event]), [(sql.TOUCH_RUN_ANY, {"run_id": run_id})]
            )
            return decided

        async def recover(xid: str) -> ApprovalRequest:
            for request in await self.get_approvals(run_id):
                if request.id == request_id:
                    return request
            raise rules.RequestNotFoundError(f"run {run_id!r} has no request {request_id!r}")

        return await self._write(txn, recover)
