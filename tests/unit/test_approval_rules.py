"""The approval rules (approvals.py) and the dashboard's attention rules (attention.py), pure:
canonical arguments and their digest, what an executor's ``approval()`` sees, and which runs
come to need a person."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from nanoagent_core import approvals
from nanoagent_core.approvals import ApprovalNeeded, ApprovalRequest, Decision, approval, deciding
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import RunState
from nanoagent_tui.attention import Transitions, bell_enabled, next_needing


def request(args: dict[str, object], decision: Decision, task_id: str = "t1") -> ApprovalRequest:
    need = ApprovalNeeded("send", args, "why")
    made = approvals.new_request("r", task_id, 1, need)
    return made.model_copy(update={"decision": decision, "reason": "no"})


def test_canonical_arguments_ignore_key_order_and_refuse_what_is_not_json() -> None:
    a = approvals.canonical_json({"b": 1, "a": [1, {"y": 2, "x": "é"}]})
    b = approvals.canonical_json({"a": [1, {"x": "é", "y": 2}], "b": 1})
    assert a == b == '{"a":[1,{"x":"é","y":2}],"b":1}'
    assert approvals.digest_of("send", a) != approvals.digest_of("other", a)
    for bad in ({"x": math.nan}, {"x": object()}, {"x": "y" * 70_000}):
        with pytest.raises(ValidationError):
            approvals.canonical_json(bad)


def test_approval_outside_a_decision_asks_and_inside_returns_exactly_its_decision() -> None:
    with pytest.raises(ApprovalNeeded) as asked:
        approval("send", {"to": "a"}, "mail a")
    assert (asked.value.what, dict(asked.value.arguments)) == ("send", {"to": "a"})
    with deciding([request({"to": "a"}, Decision.DENIED)]):
        got = approval("send", {"to": "a"}, "mail a")
        assert (got.approved, got.reason) == (False, "no")
        with pytest.raises(ApprovalNeeded):  # other arguments: not decided
            approval("send", {"to": "b"})
    for undecided in (Decision.PENDING, Decision.EXPIRED):
        with deciding([request({"to": "a"}, undecided)]), pytest.raises(ApprovalNeeded):
            approval("send", {"to": "a"})
    # the newest decision for the same action wins
    newer = request({"to": "a"}, Decision.APPROVED)
    with deciding([request({"to": "a"}, Decision.DENIED), newer]):
        assert approval("send", {"to": "a"}).request_id == newer.id


def test_check_decidable_refuses_unknown_decided_and_other_digests() -> None:
    pending = request({"to": "a"}, Decision.PENDING)
    assert approvals.check_decidable("r", pending.id, pending, pending.digest) is pending
    with pytest.raises(approvals.RequestNotFoundError):
        approvals.check_decidable("r", "x", None, None)
    with pytest.raises(approvals.StaleRequestError, match="no longer pending"):
        approvals.check_decidable("r", "x", request({}, Decision.APPROVED), None)
    with pytest.raises(approvals.StaleRequestError, match="other arguments"):
        approvals.check_decidable("r", pending.id, pending, "0" * 64)


def run(run_id: str) -> RunState:
    return RunState(run_id=run_id, goal="g", max_iterations=5)


OPENED = datetime(2026, 1, 1, tzinfo=UTC)


def test_transitions_report_a_run_coming_to_need_a_person_once() -> None:
    seen = Transitions()
    opened = [(run("a"), "crashed"), (run("b"), "running")]
    assert seen.observe(opened, OPENED) == []  # as opened
    assert seen.observe(opened, OPENED) == []
    found = seen.observe(
        [(run("a"), "crashed"), (run("b"), "paused"), (run("c"), "failed")], OPENED
    )
    assert [(t.run.run_id, t.word) for t in found] == [("b", "paused"), ("c", "failed")]
    assert seen.observe([(run("b"), "paused"), (run("c"), "failed")], OPENED) == []
    assert [t.word for t in seen.observe([(run("b"), "running")], OPENED)] == []
    assert [t.word for t in seen.observe([(run("b"), "crashed")], OPENED)] == ["crashed"]


def test_an_old_failed_run_a_filter_brings_in_is_not_news() -> None:
    seen = Transitions()
    assert seen.observe([(run("a"), "running")], OPENED) == []
    old = run("old").model_copy(update={"updated_at": OPENED - timedelta(days=3)})
    assert seen.observe([(run("a"), "running"), (old, "failed")], OPENED) == []
    # a run first seen that changed after the dashboard opened is news
    assert [t.word for t in seen.observe([(run("new"), "failed")], OPENED)] == ["failed"]


def test_a_notice_is_clipped() -> None:
    failed = run("f").model_copy(update={"error": "x" * 100_000})
    seen = Transitions()
    seen.observe([(failed, "running")], OPENED)
    (notice,) = seen.observe([(failed, "failed")], OPENED)
    assert len(notice.message()) <= 300


def test_next_needing_wraps_and_skips_the_others() -> None:
    rows = [("a", "running"), ("b", "paused"), ("c", "completed"), ("d", "crashed")]
    assert next_needing(rows, None) == "b"
    assert next_needing(rows, "b") == "d"
    assert next_needing(rows, "d") == "b"
    assert next_needing([("a", "running")], "a") is None
    assert next_needing([], None) is None


def test_the_bell_setting() -> None:
    assert bell_enabled({})
    assert bell_enabled({"NANOAGENT_BELL": "1"})
    for off in ("0", "off", "No", "false"):
        assert not bell_enabled({"NANOAGENT_BELL": off})
