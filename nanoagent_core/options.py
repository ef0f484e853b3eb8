"""One grammar for agent options, on the command line (``--option KEY=VALUE``, repeated) and
in the dashboard's new-run form (``KEY=VALUE`` pairs in one line)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable

from nanoagent_core.clip import quoted
from nanoagent_core.errors import ValidationError

__all__ = ["parse_option_pairs", "parse_option_text", "split_option_text", "whole_number"]

#: Pairs in one line are separated by spaces, or by a comma that starts the next ``KEY=``: a
#: value may hold commas (``fail=2,4 delay=0.1`` and ``tasks=3,delay=0.1`` both work).
_PAIR_SEPARATOR = re.compile(r"\s+|,(?=[^,=\s]+=)")


def parse_option_pairs(pairs: Iterable[str], *, what: str = "--option") -> dict[str, str]:
    """``KEY=VALUE`` pairs as a dict: the key is stripped and must not be empty, the value is
    kept as given; a key given twice is refused (ValidationError, naming ``what``)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationError(f"{what} takes KEY=VALUE, not {quoted(pair)}")
        if key in options:
            raise ValidationError(f"{what} {quoted(key)} given twice; give each option once")
        options[key] = value
    return options


def split_option_text(text: str) -> list[str]:
    """One line of pairs split into ``KEY=VALUE`` strings (see _PAIR_SEPARATOR)."""
    return [part for part in _PAIR_SEPARATOR.split(text.strip()) if part]


def parse_option_text(text: str, *, what: str = "options") -> dict[str, str]:
    """One line of ``KEY=VALUE`` pairs (the form's field), by the command line's rules."""
    return parse_option_pairs(split_option_text(text), what=what)


def whole_number(text: str, low: int, high: int) -> int:
    """An argparse type: ``text`` as a whole number from ``low`` to ``high`` (argparse turns
    the error into one line and exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"takes a whole number from {low:,} to {high:,}, not {quoted(text)}"
        )
    return value
