"""The store contract for approval requests, on every store (see conftest): a request is
recorded by the step that carries it, decided once, bound to its id and digest; a new request
expires the run's other pending ones; deciding writes an event."""

from __future__ import annotations

import pytest
from storekit import OWNER, new_run, task

from nanoagent_core import approvals
from nanoagent_core.approvals import ApprovalNeeded, Decision, StaleRequestError
from nanoagent_core.approvals import RequestNotFoundError as NoRequest
from nanoagent_core.errors import LeaseLostError
from nanoagent_core.models import EventKind, Phase, RunState
from nanoagent_core.protocols import Step, Store


async def claimed(store: Store, run_id: str = "run-1") -> RunState:
    await store.create_run(new_run(run_id))
    return await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)


def need(to: str = "team@example.com") -> ApprovalNeeded:
    return ApprovalNeeded("send_summary", {"to": to, "n": [1, 2]}, "mail the summary")


async def ask(store: Store, run: RunState, request: approvals.ApprovalRequest) -> RunState:
    step = Step(
        phase=Phase.EXECUTING,
        iteration=1,
        current_task_id="t1",
        tasks=(task("t1", attempts=1),),
        approval=request,
    )
    return await store.commit_step(run.run_id, step, epoch=run.epoch)


async def test_a_request_commits_with_its_step_and_reads_back(store: Store) -> None:
    run = await claimed(store)
    request = approvals.new_request(run.run_id, "t1", 1, need())
    await ask(store, run, request)
    (stored,) = await store.get_approvals(run.run_id)
    assert stored.model_dump(exclude={"requested_at"}) == request.model_dump(
        exclude={"requested_at"}
    )
    assert stored.arguments == '{"n":[1,2],"to":"team@example.com"}'
    assert stored.digest == approvals.digest_of("send_summary", stored.arguments)
    assert await store.get_approvals("no-such-run") == []


async def test_a_fenced_out_step_records_no_request(store: Store) -> None:
    run = await claimed(store)
    request = approvals.new_request(run.run_id, "t1", 1, need())
    stale = run.model_copy(update={"epoch": run.epoch - 1})
    with pytest.raises(LeaseLostError):
        await ask(store, stale, request)
    assert await store.get_approvals(run.run_id) == []


async def test_decided_once_with_an_event(store: Store) -> None:
    run = await claimed(store)
    request = approvals.new_request(run.run_id, "t1", 1, need())
    await ask(store, run, request)
    before = await store.last_event_id()
    decided = await store.decide_approval(
        run.run_id, request.id, approve=True, digest=request.digest, reason="  fine\nby me "
    )
    assert decided.decision is Decision.APPROVED
    assert decided.reason == "fine by me"
    assert decided.decided_at is not None
    (event,) = await store.read_events(after_id=before)
    assert event.kind == EventKind.APPROVAL_DECIDED
    assert event.data["request_id"] == request.id
    assert event.data["decision"] == "approved"
    # approving twice, or denying after approving: refused, the first decision stands
    for approve in (True, False):
        with pytest.raises(StaleRequestError, match="no longer pending"):
            await store.decide_approval(run.run_id, request.id, approve=approve)
    (stored,) = await store.get_approvals(run.run_id)
    assert stored.decision is Decision.APPROVED
    assert await store.last_event_id() == before + 1


async def test_a_decision_for_other_arguments_is_refused(store: Store) -> None:
    run = await claimed(store)
    request = approvals.new_request(run.run_id, "t1", 1, need())
    await ask(store, run, request)
    other = approvals.new_request(run.run_id, "t1", 1, need("everyone@example.com"))
    with pytest.raises(StaleRequestError, match="other arguments"):
        await store.decide_approval(run.run_id, request.id, approve=True, digest=other.digest)
    (stored,) = await store.get_approvals(run.run_id)
    assert stored.decision is Decision.PENDING


async def test_unknown_request_is_refused(store: Store) -> None:
    run = await claimed(store)
    with pytest.raises(NoRequest):
        await store.decide_approval(run.run_id, "ap-nothing", approve=True)


async def test_a_new_request_expires_the_stale_one(store: Store) -> None:
    run = await claimed(store)
    first = approvals.new_request(run.run_id, "t1", 1, need())
    run = await ask(store, run, first)
    # asking again for the same action keeps the same pending request
    again = approvals.new_request(run.run_id, "t1", 2, need(), await store.get_approvals("run-1"))
    assert again.id == first.id
    run = await ask(store, run, again)
    assert [r.id for r in await store.get_approvals(run.run_id)] == [first.id]
    # other arguments: a new request; the first can no longer be approved
    second = approvals.new_request(run.run_id, "t1", 2, need("x@example.com"))
    await ask(store, run, second)
    stored = await store.get_approvals(run.run_id)
    assert [(r.id, r.decision) for r in stored] == [
        (first.id, Decision.EXPIRED),
        (second.id, Decision.PENDING),
    ]
    with pytest.raises(StaleRequestError, match="no longer pending"):
        await store.decide_approval(run.run_id, first.id, approve=True)
    denied = await store.decide_approval(run.run_id, second.id, approve=False)
    assert denied.decision is Decision.DENIED
    assert denied.reason is None
