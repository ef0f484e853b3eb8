"""The seed's fixed rules: limits, the suspicious-pattern check and the synthesized result."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Container, Sequence

from nanoagent_core.models import Task

__all__ = [
    "MAX_CANCELLED",
    "MAX_NEW_TASKS",
    "MAX_PLANNED_TASKS",
    "REFLECT_EVERY",
    "is_suspicious",
    "synthesize_result",
    "task_id_for",
]

MAX_PLANNED_TASKS = 50
MAX_NEW_TASKS = 20
MAX_CANCELLED = 50
REFLECT_EVERY = 3
RESULT_PREVIEW = 200

_SUSPICIOUS = (
    re.compile(r"[;|&$`]"),
    re.compile(r"\brm\s+(-r|-f|--)", re.IGNORECASE),
    re.compile(r"\b(del|drop|truncate)\s+(table|database)\b", re.IGNORECASE),
    re.compile(r"\b(exec|eval)\s*\(", re.IGNORECASE),
)


def is_suspicious(description: str) -> bool:
    """True if a task description from reflection looks like an injected command."""
    return any(pattern.search(description) for pattern in _SUSPICIOUS)


def task_id_for(goal: str, seq: int, description: str, taken: Container[str]) -> str:
    """An 8-character URL-safe id, derived (not random) so that a resumed run and a clean run
    of the same goal give their tasks the same ids. ``taken``: the run's ids so far."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{goal}\0{seq}\0{description}\0{salt}".encode()).digest()
        candidate = base64.urlsafe_b64encode(digest).decode()[:8]
        if candidate not in taken:
            return candidate
        salt += 1


def synthesize_result(done: Sequence[Task]) -> str:
    lines = [f"Completed {len(done)} task(s):"]
    for number, task in enumerate(done, start=1):
        result = task.result or ""
        if len(result) > RESULT_PREVIEW:
            result = result[:RESULT_PREVIEW] + "..."
        lines.append(f"{number}. {task.description}")
        lines.append(f"   Result: {result}")
    return "\n".join(lines)
