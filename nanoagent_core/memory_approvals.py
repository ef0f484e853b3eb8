"""The memory store's approval requests (approvals.py): recorded by a step
(:meth:`MemoryApprovals._record_approval`), read, and decided once. Mixed into MemoryStore,
whose plumbing these call; each method does all its work between two awaits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nanoagent_core import approvals
from nanoagent_core.approvals import ApprovalRequest, Decision
from nanoagent_core.models import EventKind, RunState, check_run_id
from nanoagent_core.protocols import NewEvent

__all__ = ["MemoryApprovals"]


class MemoryApprovals:
    #: run id -> request id -> approval request, in request order
    _approvals: dict[str, dict[str, ApprovalRequest]]
    _runs: dict[str, RunState]
    _clock: Any

    def _check_open(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def _emit(
        self, run_id: str, now: datetime, events: Sequence[NewEvent]
    ) -> None:  # pragma: no cover
        raise NotImplementedError

    def _put(self, run: RunState, **changes: Any) -> RunState:  # pragma: no cover
        raise NotImplementedError

    def _record_approval(self, request: ApprovalRequest, now: datetime) -> None:
        """Inside a step: the request stored (kept as it is when already there) and the
        run's other pending requests expired."""
        held = self._approvals.setdefault(request.run_id, {})
        for request_id, other in list(held.items()):
            if other.decision is Decision.PENDING and request_id != request.id:
                held[request_id] = other.model_copy(
                    update={"decision": Decision.EXPIRED, "decided_at": now}
                )
        if request.id not in held:
            held[request.id] = request.model_copy(
                update={"decision": Decision.PENDING, "requested_at": now, "decided_at": None}
            )

    async def get_approvals(self, run_id: str) -> list[ApprovalRequest]:
        self._check_open()
        check_run_id(run_id)
        return list(self._approvals.get(run_id, {}).values())

    async def decide_approval(
        self,
        run_id: str,
        request_id: str,
        *,
        approve: bool,
        digest: str | None = None,
        reason: str | None = None,
    ) -> ApprovalRequest:
        self._check_open()
        check_run_id(run_id)
        held = self._approvals.get(run_id, {})
        request = approvals.check_decidable(run_id, request_id, held.get(request_id), digest)
        now: datetime = self._clock()
        decided = request.model_copy(
            update={
                "decision": approvals.decision_value(approve),
                "reason": approvals.clean_reason(reason),
                "decided_at": now,
            }
        )
        held[request_id] = decided
        event = NewEvent(kind=EventKind.APPROVAL_DECIDED, data=approvals.decided_data(decided))
        self._emit(run_id, now, [event])
        run = self._runs.get(run_id)
        if run is not None:
            self._put(run, updated_at=now)
        return decided
