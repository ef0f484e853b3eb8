"""Approvals: an executor asks a person before an action; the rules, written once.

An executor body calls :func:`approval` with what it is about to do (``what``: a tool or
action name; ``arguments``: JSON; ``why``: one line). With no decision recorded for exactly
that action in this task, it raises :class:`ApprovalNeeded`: the loop records an
:class:`ApprovalRequest` in the same commit that pauses the run (reason ``approval``) and
releases its worker. A person decides (``nanoagent approve``, the dashboard); the decision
binds to the request's id **and** the digest of its canonical arguments, and is made once. The
resumed run re-runs the task body as the next attempt; :func:`approval` then returns the
recorded decision for the same action (same task, same name, same digest), so a re-run after
a crash sees the same decision again: the action runs at most once per attempt key.

Pure functions and records only: every store applies the same rules.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import secrets
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nanoagent_core.errors import NanoagentError, ValidationError
from nanoagent_core.models import UtcDatetime, utc_now

__all__ = [
    "MAX_ARGUMENTS_CHARS",
    "MAX_WHAT_CHARS",
    "MAX_WHY_CHARS",
    "ApprovalDecision",
    "ApprovalError",
    "ApprovalNeeded",
    "ApprovalRequest",
    "Decision",
    "RequestNotFoundError",
    "StaleRequestError",
    "approval",
    "canonical_json",
    "check_decidable",
    "decided_data",
    "digest_of",
    "new_request",
    "pending_of",
    "recorded_decision",
    "request_params",
    "requested_data",
    "task_approvals",
]

MAX_WHAT_CHARS = 200
MAX_WHY_CHARS = 500
MAX_ARGUMENTS_CHARS = 64_000


class Decision(StrEnum):
    """Where a request stands."""

    PENDING = "pending"  #: waiting for a person
    APPROVED = "approved"  #: the action may run (under this request's arguments only)
    DENIED = "denied"  #: the action must not run; the executor gets the reason
    #: superseded: the run asked again with other arguments before anyone decided
    EXPIRED = "expired"


class ApprovalRequest(BaseModel):
    """One request, as stored. ``arguments`` is canonical JSON text (sorted keys, no spaces),
    ``digest`` its sha256 (hex): what a decision binds to, with ``id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    run_id: str
    task_id: str
    attempt: int = Field(ge=0)
    what: str = Field(min_length=1, max_length=MAX_WHAT_CHARS)
    arguments: str
    why: str = Field(max_length=MAX_WHY_CHARS)
    digest: str = Field(min_length=64, max_length=64)
    decision: Decision = Decision.PENDING
    reason: str | None = None
    requested_at: UtcDatetime = Field(default_factory=utc_now)
    decided_at: UtcDatetime | None = None
    #: a model-backed executor's conversation up to the call that waits (pydantic-ai JSON)
    messages: str | None = None

    def arguments_value(self) -> Any:
        """The arguments as JSON values (the stored text parsed)."""
        return json.loads(self.arguments)


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """What :func:`approval` hands an executor once a person decided."""

    request_id: str
    approved: bool
    reason: str | None


class ApprovalNeeded(BaseException):
    """Raised by an executor body that needs a person's decision before an action.

    Derives from BaseException so that an agent's ``except Exception`` cannot swallow it (the
    task would fail instead of waiting)."""

    def __init__(
        self,
        what: str,
        arguments: Mapping[str, Any],
        why: str = "",
        *,
        messages: str | None = None,
        transcript: object | None = None,
    ) -> None:
        super().__init__(f"approval needed for {what}")
        self.what = what
        self.arguments: Mapping[str, Any] = arguments
        self.why = why
        #: a model-backed executor's conversation up to the call that waits: stored with the
        #: request, so the re-run attempt continues it (pydantic-ai JSON)
        self.messages = messages
        #: the attempt's agents.base.Transcript, journaled with the pause
        self.transcript = transcript


class ApprovalError(NanoagentError):
    """The decision was refused: nothing (any more) to decide."""

    exit_code = 7


class RequestNotFoundError(ApprovalError):
    """No such approval request."""

    exit_code = 3


class StaleRequestError(ApprovalError):
    """The request is no longer pending, or its arguments are not those reviewed."""


# -- canonical arguments ------------------------------------------------------------------------


def canonical_json(arguments: Mapping[str, Any] | Any) -> str:
    """JSON with sorted keys and no spaces: equal arguments give equal text (and digest).
    ValidationError for what is not JSON or is too long."""
    try:
        text = json.dumps(
            arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"approval arguments are not JSON ({exc})") from None
    if len(text) > MAX_ARGUMENTS_CHARS:
        raise ValidationError(f"approval arguments exceed {MAX_ARGUMENTS_CHARS:,} characters")
    return text


def digest_of(what: str, canonical: str) -> str:
    """sha256 of the action's name and its canonical arguments: a decision binds to this."""
    return hashlib.sha256(f"{what}\n{canonical}".encode()).hexdigest()


def new_request(
    run_id: str,
    task_id: str,
    attempt: int,
    need: ApprovalNeeded,
    existing: Sequence[ApprovalRequest] = (),
) -> ApprovalRequest:
    """The request to record for ``need``: the task's pending one for the same action when
    there is one (asking again does not make a second request), else a new one."""
    what = " ".join(str(need.what).split())[:MAX_WHAT_CHARS] or "action"
    why = " ".join(str(need.why).split())[:MAX_WHY_CHARS]
    canonical = canonical_json(need.arguments)
    digest = digest_of(what, canonical)
    for request in existing:
        if (
            request.task_id == task_id
            and request.digest == digest
            and request.decision is Decision.PENDING
        ):
            return request
    return ApprovalRequest(
        id=f"ap-{secrets.token_hex(4)}",
        run_id=run_id,
        task_id=task_id,
        attempt=attempt,
        what=what,
        arguments=canonical,
        why=why,
        digest=digest,
        messages=need.messages,
    )


# -- deciding -----------------------------------------------------------------------------------


def check_decidable(
    run_id: str, request_id: str, request: ApprovalRequest | None, digest: str | None
) -> ApprovalRequest:
    """Refuse a decision for a request that does not exist, is no longer pending, or whose
    digest is not ``digest`` (None: the caller read the request in the same transaction)."""
    if request is None:
        raise RequestNotFoundError(f"run {run_id!r} has no approval request {request_id!r}")
    if request.decision is not Decision.PENDING:
        raise StaleRequestError(
            f"approval request {request_id!r} is no longer pending ({request.decision})"
        )
    if digest is not None and digest != request.digest:
        raise StaleRequestError(
            f"approval request {request_id!r} asks for other arguments than those reviewed"
        )
    return request


def decision_value(approve: bool) -> Decision:
    return Decision.APPROVED if approve else Decision.DENIED


def clean_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    text = " ".join(reason.split())[:MAX_WHY_CHARS]
    return text or None


def request_params(request: ApprovalRequest) -> dict[str, Any]:
    """A request's row parameters (the store adds ``now``)."""
    return {
        "run_id": request.run_id,
        "request_id": request.id,
        "task_id": request.task_id,
        "attempt": request.attempt,
        "what": request.what,
        "arguments": request.arguments,
        "why": request.why,
        "digest": request.digest,
        "messages": request.messages,
    }


def requested_data(request: ApprovalRequest) -> dict[str, Any]:
    """The ``approval_requested`` event's data (arguments stay in the request row)."""
    return {
        "request_id": request.id,
        "task_id": request.task_id,
        "attempt": request.attempt,
        "what": request.what,
        "why": request.why,
        "digest": request.digest,
    }


def decided_data(request: ApprovalRequest) -> dict[str, Any]:
    """The ``approval_decided`` event's data."""
    data: dict[str, Any] = {
        "request_id": request.id,
        "task_id": request.task_id,
        "decision": request.decision.value,
        "what": request.what,
    }
    if request.reason:
        data["reason"] = request.reason
    return data


def pending_of(requests: Sequence[ApprovalRequest]) -> list[ApprovalRequest]:
    return [r for r in requests if r.decision is Decision.PENDING]


# -- what an executor sees ----------------------------------------------------------------------


def task_approvals(requests: Sequence[ApprovalRequest], task_id: str) -> list[ApprovalRequest]:
    return [r for r in requests if r.task_id == task_id]


def recorded_decision(
    requests: Sequence[ApprovalRequest], what: str, canonical: str
) -> ApprovalDecision | None:
    """The newest decided request among ``requests`` (one task's) for exactly this action."""
    what = " ".join(what.split())[:MAX_WHAT_CHARS] or "action"
    digest = digest_of(what, canonical)
    for request in reversed(requests):
        if request.digest != digest:
            continue
        if request.decision is Decision.APPROVED:
            return ApprovalDecision(request.id, True, request.reason)
        if request.decision is Decision.DENIED:
            return ApprovalDecision(request.id, False, request.reason)
    return None


_current: contextvars.ContextVar[tuple[ApprovalRequest, ...]] = contextvars.ContextVar(
    "nanoagent_approvals", default=()
)


@contextmanager
def deciding(requests: Sequence[ApprovalRequest]) -> Generator[None]:
    """Set the requests an executor body's :func:`approval` calls consult (the loop does)."""
    token = _current.set(tuple(requests))
    try:
        yield
    finally:
        _current.reset(token)


def current_requests() -> tuple[ApprovalRequest, ...]:
    """The requests of the task whose body runs now (see :func:`deciding`)."""
    return _current.get()


def approval(what: str, arguments: Mapping[str, Any], why: str = "") -> ApprovalDecision:
    """Inside ``Executor.execute``: the recorded decision for this exact action (name and
    arguments) in this task, or raise :class:`ApprovalNeeded` so the run waits for one.

    Approved: perform the action, keyed by the attempt's idempotency key. Denied: do not;
    ``reason`` says why (None when the person gave none)."""
    canonical = canonical_json(arguments)
    found = recorded_decision(_current.get(), what, canonical)
    if found is None:
        raise ApprovalNeeded(what, arguments, why)
    return found
