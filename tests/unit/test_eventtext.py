"""nanoagent_core.eventtext: one line per event."""

from __future__ import annotations

from nanoagent_core.eventtext import describe_event


def test_telling_keys_come_first_then_the_rest_sorted() -> None:
    line = describe_event("task_done", {"zeta": 1, "result": "ok", "task_id": "t1", "alpha": 2})
    assert line == "task_done task_id=t1 result=ok alpha=2 zeta=1"


def test_lists_are_counted_and_empty_values_and_dicts_left_out() -> None:
    line = describe_event("planned", {"tasks": ["a", "b"], "none": None, "d": {"x": 1}, "e": []})
    assert line == "planned tasks=2"


def test_values_are_on_one_line_clipped_and_floats_short() -> None:
    line = describe_event("note", {"seconds": 1.50, "error": "a\nb   c" + "x" * 200})
    assert line.startswith("note seconds=1.5 error=a b cxx")
    assert "\n" not in line
    assert line.endswith("…")
    assert len(line.split("error=", 1)[1]) == 80
