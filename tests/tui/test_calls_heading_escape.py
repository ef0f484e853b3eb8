"""A planner/reflector journal row read from a tampered database shows its role escaped in
the conversation's heading: the store reads rows without validating them
(``rows.call_from_row``), so the role is whatever text the file holds."""

from __future__ import annotations

from nanoagent_core.conversation import call_views
from nanoagent_core.models import ModelCall
from nanoagent_tui.screens.conversation import _heading  # pyright: ignore[reportPrivateUsage]


def test_a_tampered_role_reaches_the_heading_escaped() -> None:
    tampered = ModelCall.model_construct(
        role="\x1b]0;pwned\x07planner\x1b[2J",  # as rows.call_from_row builds it
        iteration=0,
        call=1,
        outcome="done",
        messages=None,
        model=None,
        requests=1,
        tokens_in=1,
        tokens_out=1,
        cost_usd=None,
        seconds=0.0,
    )
    (view,) = call_views([tampered])
    heading = _heading(view).plain
    assert "\x1b" not in heading, repr(heading)
    assert "\x07" not in heading, repr(heading)
    assert "\\x1b]0;pwned\\x07planner\\x1b[2J, iteration 0, call 1" in heading
