"""nanoagent_core.options: one KEY=VALUE grammar for the command line and the form."""

from __future__ import annotations

import pytest

from nanoagent_core.errors import ValidationError
from nanoagent_core.options import parse_option_pairs, parse_option_text, split_option_text


def test_pairs_keep_the_value_and_strip_the_key() -> None:
    assert parse_option_pairs([" tasks =3", "msg=a=b", "empty="]) == {
        "tasks": "3",
        "msg": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize("bad", ["tasks", "=3", " =3"])
def test_a_pair_without_key_or_equals_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="--option takes KEY=VALUE"):
        parse_option_pairs([bad])


def test_a_repeated_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        parse_option_pairs(["tasks=1", "tasks=2"])


def test_one_line_splits_on_spaces_and_on_commas_before_a_key() -> None:
    assert split_option_text("  fail=2,4 delay=0.1  ") == ["fail=2,4", "delay=0.1"]
    assert split_option_text("tasks=3,delay=0.1") == ["tasks=3", "delay=0.1"]
    assert split_option_text("") == []
    assert parse_option_text("tasks=3,fail=1,2") == {"tasks": "3", "fail": "1,2"}


def test_the_form_refuses_what_the_command_refuses() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        parse_option_text("tasks=1 tasks=2")
    with pytest.raises(ValidationError, match="options takes KEY=VALUE"):
        parse_option_text("tasks")
