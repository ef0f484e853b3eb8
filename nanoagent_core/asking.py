"""The loop's side of approvals (approvals.py): what a task body that asked for a person's
decision becomes: a paused attempt whose step records the request with the pause."""

from __future__ import annotations

from collections.abc import Sequence

from nanoagent_core.agents.base import ExecutionResult, Transcript
from nanoagent_core.approvals import ApprovalNeeded, ApprovalRequest, new_request, requested_data
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import EventKind, PauseReason, Task
from nanoagent_core.pause import Pause
from nanoagent_core.protocols import NewEvent

__all__ = ["Asked", "asked"]


class Asked:
    """A body's request for approval, as the loop commits it."""

    def __init__(self, request: ApprovalRequest, outcome: ExecutionResult) -> None:
        self.request = request
        self.outcome = outcome

    def event(self) -> NewEvent:
        return NewEvent(kind=EventKind.APPROVAL_REQUESTED, data=requested_data(self.request))


def asked(
    run_id: str, task: Task, need: ApprovalNeeded, existing: Sequence[ApprovalRequest]
) -> Asked | ExecutionResult:
    """The paused outcome and the request to record (the task's pending one when it asks
    again for the same action), or a failed outcome for a request that cannot be stored
    (arguments that are not JSON, or too long)."""
    transcript = need.transcript if isinstance(need.transcript, Transcript) else None
    try:
        request = new_request(run_id, task.id, task.attempts, need, existing)
    except NanoagentError as exc:
        return ExecutionResult(False, f"approval request refused: {exc}", transcript)
    detail = f"{request.what}: {request.why}" if request.why else request.what
    outcome = ExecutionResult(
        False,
        f"waits for approval of {request.what} ({request.id})",
        transcript,
        pause=Pause(PauseReason.APPROVAL, detail),
    )
    return Asked(request, outcome)
