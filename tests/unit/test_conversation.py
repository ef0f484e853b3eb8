"""nanoagent_core.conversation: journaled messages decoded into display parts (a pure
function over pydantic-ai's own serialization), and the ledger per task as text."""

from __future__ import annotations

import json

from pydantic_ai.messages import (
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from nanoagent_core.conversation import (
    Usage,
    attempt_views,
    conversation_parts,
    usage_by_task,
    usage_text,
)
from nanoagent_core.models import Attempt


def _dumped() -> str:
    messages = [
        ModelRequest(
            parts=[SystemPromptPart("be brief"), UserPromptPart("Find \x1b]0;pwned\x07 trains")],
            instructions="Carry out the task.",
        ),
        ModelResponse(
            parts=[
                ThinkingPart("checking the timetable"),
                TextPart("[red]not markup[/red]\nsecond line"),
                ToolCallPart("search", {"to": "Paris", "n": 2}, "c1"),
            ]
        ),
        ModelRequest(
            parts=[ToolReturnPart("search", {"trains": ["17:04"]}, "c1")],
            instructions="Carry out the task.",
        ),
        ModelResponse(parts=[ToolCallPart("final_result", '{"result": "ok"}', "c2")]),
        ModelRequest(
            parts=[
                ToolReturnPart("final_result", "result must not be empty", "c2", outcome="retried"),
                ToolReturnPart("search", "timed out", "c3", outcome="failed"),
            ],
            instructions="Now something else.",
        ),
    ]
    return ModelMessagesTypeAdapter.dump_json(messages).decode()


def test_every_kind_of_part_in_order_with_instructions_only_where_they_change():
    parts = conversation_parts(_dumped())
    assert [(p.kind, p.title) for p in parts] == [
        ("instructions", "instructions"),
        ("system", "system"),
        ("prompt", "prompt"),
        ("thinking", "thinking"),
        ("text", "model"),
        ("tool-call", "tool call search"),
        ("tool-return", "tool return search"),
        ("tool-call", "tool call final_result"),
        ("instructions", "instructions"),
        ("retry", "retry final_result"),
        ("tool-return", "tool return search (failed)"),
    ]
    texts = [p.text for p in parts]
    assert texts[2] == "Find \\x1b]0;pwned\\x07 trains"  # control characters escaped
    assert texts[4] == "[red]not markup[/red]\nsecond line"  # line breaks kept, text as is
    assert json.loads(texts[5]) == {"to": "Paris", "n": 2}
    assert json.loads(texts[6]) == {"trains": ["17:04"]}
    assert texts[7] == '{"result": "ok"}'  # raw arguments as the provider sent them
    assert texts[8] == "Now something else."


def test_unreadable_journals_are_one_part_saying_so():
    assert conversation_parts(None) == []
    (bad,) = conversation_parts("{not json")
    assert bad.kind == "unreadable"
    assert bad.text.startswith("not JSON")
    (odd,) = conversation_parts('{"kind": "request"}')
    assert odd.text == "not a list of messages"
    assert [p.kind for p in conversation_parts('[1, {"kind": "response", "parts": 3}]')] == [
        "unreadable"
    ]
    # an older journal's retry prompt, and a part kind this version does not know
    older = json.dumps([{"kind": "request", "parts": [
        {"part_kind": "retry-prompt", "tool_name": "t", "content": [{"msg": "bad"}]},
        {"part_kind": "new-kind\x1b", "content": None},
    ]}])  # fmt: skip
    assert [(p.kind, p.title, p.text) for p in conversation_parts(older)] == [
        ("retry", "retry t", '[{"msg": "bad"}]'),
        ("other", "new-kind\\x1b", ""),
    ]


def _attempt(task_id: str, number: int, cost: float | None, requests: int = 2) -> Attempt:
    return Attempt(
        task_id=task_id, attempt=number, outcome="done", messages=_dumped(), model="m",
        requests=requests, tokens_in=1000, tokens_out=250, cost_usd=cost, seconds=1.0,
    )  # fmt: skip


def test_usage_per_task_and_its_text_never_guesses_a_cost():
    journal = [_attempt("t1", 1, None), _attempt("t1", 2, 0.0015), _attempt("t2", 1, 0.002)]
    usage = usage_by_task(journal)
    assert usage["t1"] == Usage(2, 4, 2000, 500, 0.0015, 1)
    assert usage_text(usage["t1"]) == (
        "4 requests · 2500 tokens (2000 in, 500 out) · cost $0.0015 + unknown"
    )
    assert usage_text(usage["t2"]) == "2 requests · 1250 tokens (1000 in, 250 out) · cost $0.0020"
    assert usage_text(Usage.of(_attempt("t3", 1, None))).endswith("· cost unknown")
    assert usage_text(Usage()) == "no model requests"
    assert usage_text(Usage(requests=1)) == "1 request · 0 tokens (0 in, 0 out) · cost $0"
    views = attempt_views(journal, "t1")
    assert [(v.task_id, v.attempt) for v in views] == [("t1", 1), ("t1", 2)]
    assert views[0].parts[2].text == "Find \\x1b]0;pwned\\x07 trains"
