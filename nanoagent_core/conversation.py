"""A journaled conversation as a person reads it: display parts decoded from pydantic-ai's
serialized messages (``ModelMessagesTypeAdapter`` JSON), and the ledger per task.

Pure functions over the stored text: no pydantic-ai import (the dashboard shows journals
without the ``llm`` extra), no UI. Every text a part carries has been through
:func:`~nanoagent_core.safetext.visible` (line breaks kept), so a viewer shows it as it is,
never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from nanoagent_core.clip import clip
from nanoagent_core.ledger import token_count
from nanoagent_core.models import Attempt, ModelCall
from nanoagent_core.safetext import visible

__all__ = [
    "AttemptView",
    "Part",
    "Usage",
    "attempt_views",
    "call_views",
    "conversation_parts",
    "usage_by_task",
    "usage_text",
]

#: The longest text one part shows (a tool's return may be a whole web page).
MAX_PART_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class Part:
    """One thing said in a conversation.

    ``kind``: ``instructions``, ``system``, ``prompt``, ``text`` (the model's), ``thinking``,
    ``tool-call``, ``tool-return``, ``retry``, ``other`` or ``unreadable``."""

    kind: str
    title: str  #: a short heading: "prompt", "model", "tool call search", ...
    text: str  #: the body, control characters escaped, line breaks kept


@dataclass(frozen=True, slots=True)
class Usage:
    """What some attempts spent; ``cost_usd`` sums the known costs, ``cost_unknown`` counts
    the attempts with requests whose price is unknown."""

    attempts: int = 0
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    cost_unknown: int = 0

    def __add__(self, other: Usage) -> Usage:
        costs = [c for c in (self.cost_usd, other.cost_usd) if c is not None]
        return Usage(
            self.attempts + other.attempts,
            self.requests + other.requests,
            self.tokens_in + other.tokens_in,
            self.tokens_out + other.tokens_out,
            sum(costs) if costs else None,
            self.cost_unknown + other.cost_unknown,
        )

    @classmethod
    def of(cls, attempt: Attempt | ModelCall) -> Usage:
        unknown = attempt.cost_usd is None and attempt.requests > 0
        return cls(
            1,
            attempt.requests,
            attempt.tokens_in,
            attempt.tokens_out,
            attempt.cost_usd,
            int(unknown),
        )


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One journaled attempt, decoded for showing."""

    task_id: str
    attempt: int
    outcome: str
    model: str | None
    usage: Usage
    seconds: float
    parts: tuple[Part, ...]
    #: what the heading calls it ("planner, iteration 0, call 1"); None: "attempt N"
    label: str | None = None


def _text(value: object) -> str:
    """Any JSON value as text: a string as it is, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    return visible(clip(text, MAX_PART_CHARS) if len(text) > MAX_PART_CHARS else text, lines=True)


def _prompt(content: object) -> str:
    if isinstance(content, list):  # multimodal: text items as they are, others by kind
        items: list[str] = []
        for item in content:  # pyright: ignore[reportUnknownVariableType]
            if isinstance(item, str):
                items.append(item)
            elif isinstance(item, dict):
                entry = cast(dict[str, Any], item)
                items.append(f"[{entry.get('kind') or entry.get('media_type') or 'item'}]")
            else:
                items.append(f"[{type(item).__name__}]")  # pyright: ignore[reportUnknownArgumentType]
        return _text("\n".join(items))
    return _text(content)


def _request_parts(part: Mapping[str, Any]) -> Part:
    kind = part.get("part_kind")
    if kind == "user-prompt":
        return Part("prompt", "prompt", _prompt(part.get("content")))
    if kind == "system-prompt":
        return Part("system", "system", _text(part.get("content")))
    if kind == "instruction":
        return Part("instructions", "instructions", _text(part.get("content")))
    name = visible(str(part.get("tool_name") or ""))
    if kind == "tool-return":
        outcome = part.get("outcome")
        if outcome == "retried":  # the model is asked to try again (pydantic-ai >= 2.6x)
            return Part("retry", f"retry {name}".rstrip(), _text(part.get("content")))
        title = f"tool return {name}".rstrip()
        if outcome not in (None, "success"):
            title += f" ({visible(str(outcome))})"
        return Part("tool-return", title, _text(part.get("content")))
    if kind in ("retry-prompt", "retry-feedback"):
        title = f"retry {name}".rstrip()
        return Part("retry", title, _text(part.get("content")))
    return Part("other", visible(str(kind or "part")), _text(part.get("content")))


def _response_parts(part: Mapping[str, Any]) -> Part:
    kind = part.get("part_kind")
    if kind == "text":
        return Part("text", "model", _text(part.get("content")))
    if kind == "thinking":
        return Part("thinking", "thinking", _text(part.get("content")))
    if kind in ("tool-call", "builtin-tool-call", "native-tool-call"):
        name = visible(str(part.get("tool_name") or "?"))
        args = part.get("args")
        if isinstance(args, str):  # a provider's raw arguments: JSON text, shown as sent
            return Part("tool-call", f"tool call {name}", _text(args))
        return Part("tool-call", f"tool call {name}", _text(args if args is not None else {}))
    if kind in ("builtin-tool-return", "native-tool-return"):
        name = visible(str(part.get("tool_name") or ""))
        return Part("tool-return", f"tool return {name}".rstrip(), _text(part.get("content")))
    return Part("other", visible(str(kind or "part")), _text(part.get("content")))


def conversation_parts(messages_json: str | None) -> list[Part]:
    """The parts of one serialized conversation, in order. Instructions are shown where
    they change (pydantic-ai repeats them on every request); text that cannot be read gives
    one ``unreadable`` part saying why."""
    if messages_json is None:
        return []
    try:
        messages = json.loads(messages_json)
    except ValueError as exc:
        return [Part("unreadable", "unreadable", visible(f"not JSON: {exc}"))]
    except RecursionError:
        return [Part("unreadable", "unreadable", "nested too deep to read")]
    if not isinstance(messages, list):
        return [Part("unreadable", "unreadable", "not a list of messages")]
    parts: list[Part] = []
    instructions: object = None
    for raw in cast(list[Any], messages):
        if not isinstance(raw, dict):
            parts.append(Part("unreadable", "unreadable", "a message that is not an object"))
            continue
        message = cast(dict[str, Any], raw)
        kind: Any = message.get("kind")
        items: Any = message.get("parts")
        if not isinstance(items, list):
            items = []
        if kind == "request":
            said: Any = message.get("instructions")
            if said and said != instructions:
                parts.append(Part("instructions", "instructions", _text(said)))
            if said:
                instructions = said
        decode = _request_parts if kind == "request" else _response_parts
        for item in cast(list[Any], items):
            if isinstance(item, dict):
                parts.append(decode(cast(dict[str, Any], item)))
    return parts


def attempt_views(attempts: Iterable[Attempt], task_id: str | None = None) -> list[AttemptView]:
    """The attempts (of ``task_id``, or all), decoded, in the journal's order."""
    return [
        AttemptView(
            task_id=a.task_id,
            attempt=a.attempt,
            outcome=a.outcome,
            model=a.model,
            usage=Usage.of(a),
            seconds=a.seconds,
            parts=tuple(conversation_parts(a.messages)),
        )
        for a in attempts
        if task_id is None or a.task_id == task_id
    ]


def call_views(calls: Iterable[ModelCall]) -> list[AttemptView]:
    """The planner's and reflector's journaled calls, decoded, in the journal's order."""
    return [
        AttemptView(
            task_id=c.role,
            attempt=c.call,
            outcome=c.outcome,
            model=c.model,
            usage=Usage.of(c),
            seconds=c.seconds,
            parts=tuple(conversation_parts(c.messages)),
            label=f"{c.role}, iteration {c.iteration}, call {c.call}",
        )
        for c in calls
    ]


def usage_by_task(attempts: Sequence[Attempt]) -> dict[str, Usage]:
    """Each task's ledger: the sums over its journaled attempts."""
    totals: dict[str, Usage] = {}
    for attempt in attempts:
        totals[attempt.task_id] = totals.get(attempt.task_id, Usage()) + Usage.of(attempt)
    return totals


def _cost(usage: Usage) -> str:
    if usage.cost_usd is None:
        return "cost unknown" if usage.cost_unknown else "cost $0"
    text = f"cost ${usage.cost_usd:.4f}"
    return text + " + unknown" if usage.cost_unknown else text


def usage_text(usage: Usage) -> str:
    """``3 requests · 1.2k tokens (950 in, 250 out) · cost $0.0012``; the cost is
    ``unknown`` (never a guess) when no price is known, ``$0.0012 + unknown`` when some
    attempts' prices are unknown; ``no model requests`` when there were none."""
    if not usage.requests and not usage.tokens_in and not usage.tokens_out:
        return "no model requests"
    spent = usage.tokens_in + usage.tokens_out
    tokens = token_count(spent) if spent else "0"
    plural = "" if usage.requests == 1 else "s"
    return (
        f"{usage.requests} request{plural} · {tokens} tokens ({usage.tokens_in} in,"
        f" {usage.tokens_out} out) · {_cost(usage)}"
    )
