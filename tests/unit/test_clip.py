"""nanoagent_core.clip: one clip helper, one quoting helper."""

from __future__ import annotations

from nanoagent_core.clip import clip, quoted


def test_text_within_the_limit_is_kept_whole() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("", 0) == ""


def test_longer_text_ends_in_the_mark_within_the_limit() -> None:
    assert clip("abcdef", 4) == "abc…"
    assert len(clip("x" * 1000, 80)) == 80
    assert clip("abcdef", 5, "...") == "ab..."
    assert clip("abcdef", 1) == "…"


def test_quoted_escapes_and_says_the_full_length() -> None:
    assert quoted("a\x1b[2Jb") == repr("a\x1b[2Jb")
    long = quoted("y" * 120_000, limit=10)
    assert long.startswith("'yyyyyyyyyy'…")
    assert "120,000 characters" in long
