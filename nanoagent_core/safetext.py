"""Text from a database or an agent, made safe to show on a terminal.

A goal, a task, a result, an error, an option, an event, a run id or a worker's host name is
whatever someone stored. Written to a terminal as is, ``ESC ] 0 ; … BEL`` sets the window
title, ``ESC [ 2 J`` clears the screen, and a right-to-left override (U+202E) makes the text
read differently from what it is. :func:`visible` is the one place that turns such characters
into escapes a person can read (``\\x1b``, ``\\u202e``); every line shown to a person goes
through it, on the command line and in the dashboard. JSON output does not: ``json.dumps``
escapes control characters itself and must stay exact.
"""

from __future__ import annotations

import unicodedata

__all__ = ["hidden", "visible"]

#: Unicode categories never written raw: controls (C0, DEL, C1), format characters (bidi
#: overrides and isolates, zero-width characters, soft hyphen, BOM, tags), lone surrogates,
#: and the line and paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
#: What each character seen so far becomes (most text repeats the same few).
_CACHE: dict[str, str] = {}


def hidden(char: str) -> bool:
    """Whether ``char`` (one character) is one :func:`visible` replaces."""
    return unicodedata.category(char) in _HIDDEN_CATEGORIES


def _escape(char: str) -> str:
    shown = _CACHE.get(char)
    if shown is None:
        if not hidden(char):
            shown = char
        elif char in _SHORT:
            shown = _SHORT[char]
        else:
            code = ord(char)
            shown = (
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
        if len(_CACHE) < 4096:
            _CACHE[char] = shown
    return shown


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` with every control or invisible format character written as an escape
    (``\\x1b``, ``\\x07``, ``\\x9b``, ``\\u202e``, ``\\n``); printable text is unchanged.

    ``lines``: keep line breaks and tabs (for a block of text shown on several lines, such as
    a task's result); ``\\r\\n`` counts as a line break.
    """
    if text.isprintable():  # the fast path: no control, format or separator character
        return text
    if lines:
        return "\n".join(
            "\t".join(_flat(part) for part in line.split("\t"))
            for line in text.replace("\r\n", "\n").split("\n")
        )
    return _flat(text)


def _flat(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(_escape(char) for char in text)
