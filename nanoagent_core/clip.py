"""One way to clip text (:func:`clip`), and one to echo a value back in an error message
(:func:`quoted`): quoted, control characters escaped, and clipped, so that a 120 KB option
value or an escape sequence never reaches a terminal whole."""

from __future__ import annotations

__all__ = ["ECHO_CHARS", "clip", "quoted"]

#: How many characters of a value an error message echoes.
ECHO_CHARS = 60


def quoted(value: str, limit: int = ECHO_CHARS) -> str:
    """``repr(value)`` (quotes, control characters and lone surrogates escaped), clipped to
    ``limit`` characters of the value with its full length said: ``'xxxx…' (120,000 chars)``."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def clip(text: str, limit: int, mark: str = "…") -> str:
    """``text`` when it has at most ``limit`` characters, else its start ending in ``mark``,
    ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(mark), 0)] + mark
