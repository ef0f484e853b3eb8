"""pydantic-ai's deferred tools (``requires_approval=True``, ``ApprovalRequired``) mapped onto
nanoagent's approvals (approvals.py).

A call of the executor whose output is ``DeferredToolRequests`` ends the attempt with
:class:`~nanoagent_core.approvals.ApprovalNeeded` for the first tool call that has no
recorded decision: ``what`` is the tool's name, ``arguments`` the call's arguments, and the
conversation so far rides with the request. The re-run attempt finds the task's requests
(the loop hands them in, see ``approvals.deciding``): it continues that conversation with
``DeferredToolResults`` holding, for each approval call of its last response, the decision
recorded for exactly that tool and those arguments (``ToolDenied`` with the person's reason
when denied). Calls for external execution (``CallDeferred``) are not supported: the attempt
fails, saying so. One approval call per model response is asked at a time; a response with
several calls that require approval fails its re-run (pydantic-ai wants every call answered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_ai import DeferredToolRequests, DeferredToolResults, ToolDenied
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse, ToolCallPart

from nanoagent_core.approvals import (
    ApprovalDecision,
    ApprovalNeeded,
    ApprovalRequest,
    canonical_json,
    digest_of,
    recorded_decision,
)

__all__ = ["Continuation", "continuation", "need_for"]


@dataclass(frozen=True, slots=True)
class Continuation:
    """How the re-run attempt continues a conversation that waited for decisions."""

    history: list[ModelMessage]
    results: DeferredToolResults


def _why(call: ToolCallPart) -> str:
    return f"the model calls the tool {call.tool_name}, which requires approval"


def _decision(requests: Sequence[ApprovalRequest], call: ToolCallPart) -> ApprovalDecision | None:
    return recorded_decision(requests, call.tool_name, canonical_json(call.args_as_dict()))


def _asked(requests: Sequence[ApprovalRequest], call: ToolCallPart) -> bool:
    what = " ".join(call.tool_name.split())
    digest = digest_of(what, canonical_json(call.args_as_dict()))
    return any(r.digest == digest for r in requests)


def continuation(requests: Sequence[ApprovalRequest]) -> Continuation | None:
    """For the task's recorded requests: the conversation to continue and the decisions to
    give it, or None when no request holds a conversation (a first attempt). ApprovalNeeded
    for a call that was asked about and has no decision (yet)."""
    holder = next((r for r in reversed(requests) if r.messages), None)
    if holder is None or holder.messages is None:
        return None
    history = ModelMessagesTypeAdapter.validate_json(holder.messages)
    last = history[-1] if history else None
    if not isinstance(last, ModelResponse):
        return None
    results = DeferredToolResults()
    for part in last.parts:
        if not isinstance(part, ToolCallPart):
            continue
        decision = _decision(requests, part)
        if decision is None:
            if _asked(requests, part):  # asked, not decided (yet): still waiting
                raise ApprovalNeeded(
                    part.tool_name, part.args_as_dict(), _why(part), messages=holder.messages
                )
            continue  # a call of a tool that needs no approval
        if decision.approved:
            results.approvals[part.tool_call_id] = True
        else:
            message = f"A person denied this call: {decision.reason or 'no reason given'}"
            results.approvals[part.tool_call_id] = ToolDenied(message)
    return Continuation(list(history), results)


def need_for(
    output: DeferredToolRequests,
    messages_json: str,
    requests: Sequence[ApprovalRequest],
    transcript: object | None = None,
) -> ApprovalNeeded:
    """What a call that ended with ``output`` asks of a person: the first approval call
    without a recorded decision. ValueError for calls that wait for external execution."""
    if output.calls:
        names = ", ".join(sorted({call.tool_name for call in output.calls}))
        raise ValueError(f"deferred tool calls for external execution are not supported ({names})")
    for call in output.approvals:
        if _decision(requests, call) is None:
            return ApprovalNeeded(
                call.tool_name,
                call.args_as_dict(),
                _why(call),
                messages=messages_json,
                transcript=transcript,
            )
    raise ValueError("the model asked again for calls that were already decided")
