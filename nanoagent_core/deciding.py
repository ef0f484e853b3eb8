"""A person's decision on a run's approval request, shared by ``nanoagent approve`` and the
dashboard: record it (once, bound to the request's id and digest), then resume the run in a
detached worker, whose re-run of the task receives the decision (approved: the action runs;
denied: the executor gets the denial and its reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nanoagent_core.actions import resume_detached
from nanoagent_core.approvals import (
    ApprovalError,
    ApprovalRequest,
    Decision,
    RequestNotFoundError,
    StaleRequestError,
    pending_of,
)
from nanoagent_core.launch import WorkerStartError
from nanoagent_core.models import RunStatus, check_run_id
from nanoagent_core.protocols import ApprovalStore, RunStore
from nanoagent_core.status import check_readable, held_by_live_worker

__all__ = ["DecideStore", "Decided", "choose_request", "decide"]


class DecideStore(RunStore, ApprovalStore, Protocol):
    """What deciding needs of a store."""


@dataclass(frozen=True, slots=True)
class Decided:
    request: ApprovalRequest
    #: the detached worker's pid, None when the run was not resumed (see ``note``)
    pid: int | None
    note: str | None = None  #: why the run was not resumed, when it was not

    def line(self) -> str:
        request = self.request
        word = "approved" if request.decision is Decision.APPROVED else "denied"
        head = f"{word} {request.id} ({request.what}) of run {request.run_id}"
        if self.pid is not None:
            return f"{head}; resuming in worker pid {self.pid}"
        return f"{head}; {self.note}"


def choose_request(
    run_id: str, requests: list[ApprovalRequest], request_id: str | None
) -> ApprovalRequest:
    """The request a decision is for: ``request_id``'s, else the run's one pending request.
    RequestNotFoundError / StaleRequestError / ApprovalError (nothing or too much pending)."""
    if request_id is not None:
        for request in requests:
            if request.id == request_id:
                if request.decision is not Decision.PENDING:
                    raise StaleRequestError(
                        f"approval request {request_id!r} is no longer pending ({request.decision})"
                    )
                return request
        raise RequestNotFoundError(f"run {run_id!r} has no approval request {request_id!r}")
    pending = pending_of(requests)
    if not pending:
        raise ApprovalError(f"run {run_id!r} has no approval request waiting for a decision")
    if len(pending) > 1:
        ids = ", ".join(request.id for request in pending)
        raise ApprovalError(f"run {run_id!r} has several pending requests ({ids}): name one")
    return pending[0]


async def decide(
    store: DecideStore,
    location: str,
    run_id: str,
    *,
    approve: bool,
    request_id: str | None = None,
    digest: str | None = None,
    reason: str | None = None,
    resume: bool = True,
) -> Decided:
    """Decide the run's pending request (``request_id``'s, else its only one; ``digest``:
    the digest that was reviewed, when the caller showed one) and resume the run in a
    detached worker if it is paused. The decision is recorded whether or not the worker
    starts: WorkerStartError says why it did not (``nanoagent resume`` takes the run up)."""
    check_run_id(run_id)
    run = await store.get_run(run_id)
    check_readable(run)
    request = choose_request(run_id, await store.get_approvals(run_id), request_id)
    decided = await store.decide_approval(
        run_id,
        request.id,
        approve=approve,
        digest=request.digest if digest is None else digest,
        reason=reason,
    )
    run = await store.get_run(run_id)
    if not resume:
        return Decided(decided, None, "not resumed")
    if run.status is not RunStatus.PAUSED or held_by_live_worker(run):
        return Decided(decided, None, f"run is {run.status}, not paused: not resumed")
    try:
        pid = await resume_detached(store, location, run_id)
    except WorkerStartError as exc:
        raise WorkerStartError(
            f"{decided.decision} {decided.id}, but the worker did not start: {exc}"
            f" ('nanoagent resume {run_id}' takes the run up)"
        ) from None
    return Decided(decided, pid)
