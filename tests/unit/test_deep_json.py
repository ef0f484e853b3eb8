"""Stored JSON nested deeper than Python's parser goes (a damaged or hostile row) is shown as
text, never a crash: json.loads raises RecursionError there, not ValueError."""

from __future__ import annotations

from rich.console import Console

from nanoagent_core.approvals import ApprovalNeeded, new_request
from nanoagent_core.conversation import conversation_parts
from nanoagent_tui.screens.approval import request_text

DEEP = "[" * 5000 + "]" * 5000


def test_a_conversation_nested_too_deep_is_one_unreadable_part() -> None:
    (part,) = conversation_parts(DEEP)
    assert part.kind == "unreadable"
    assert "too deep" in part.text


def test_approval_arguments_nested_too_deep_are_shown_as_stored() -> None:
    made = new_request("r", "t1", 1, ApprovalNeeded("send", {"to": "x"}, "why"))
    damaged = made.model_copy(update={"arguments": DEEP})
    console = Console(width=80, record=True)
    for short in (False, True):
        console.print(request_text(damaged, 80, short=short))
    assert "[[[[" in console.export_text()
