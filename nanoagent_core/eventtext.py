"""One line of text per event, for the command line and the dashboard's event log.

Kinds, keys and values are stored text: the line shows their control characters as escapes
(:func:`nanoagent_core.safetext.visible`), so it can go to a terminal as it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanoagent_core.clip import clip
from nanoagent_core.safetext import visible

__all__ = ["describe_event"]

_ORDER = (
    "iteration",
    "task_id",
    "attempt",
    "seconds",
    "reason",
    "detail",
    "error",
    "result",
    "description",
)


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    text = visible(" ".join(str(value).split()))
    return clip(text, 80)


def describe_event(kind: str, data: Mapping[str, Any]) -> str:
    """``kind key=value ...``, the most telling keys first; lists are counted."""
    parts = [visible(kind)]
    keys = [k for k in _ORDER if k in data] + sorted(k for k in data if k not in _ORDER)
    for key in keys:
        value = data[key]
        if value is None or value in ([], {}):
            continue
        if isinstance(value, list):
            parts.append(f"{visible(key)}={len(value)}")  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(value, dict):
            continue
        else:
            parts.append(f"{visible(key)}={_scalar(value)}")
    return " ".join(parts)
