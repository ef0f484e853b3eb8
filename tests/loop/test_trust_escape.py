"""Stored text never reaches a terminal raw (issue 9, item 2).

A goal, a task, a result, an error, an option, a host name or an event is whatever someone
stored. ``visible`` (nanoagent_core.safetext) writes its control and invisible format
characters as escapes; ``run``, ``list`` and ``show`` print their lines for people through
it, and their JSON stays exact. The command is run as the real console script, in real
subprocesses, over a real SQLite file written through the store.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st
from loopkit import cli, cli_here, option_args

from nanoagent_core.eventtext import describe_event
from nanoagent_core.models import (
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
    validated,
)
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.safetext import visible
from nanoagent_core.sqlite import SQLiteStore

#: Sets the terminal's title, rings the bell, clears the screen.
TITLE = "title \x1b]0;X\x07 ok \x1b[2J"
#: C1 CSI (red), DEL, a right-to-left override, a zero-width space, a line separator.
ODD = "c1 \x9b31m del \x7f rlo \u202eevil\u202c zw\u200b ls\u2028 end"
#: Markup that Rich or Textual would act on if the text were read as markup.
MARKUP = "[bold red]x[/] [link=https://example.com]y[/link]"
#: Bytes that must never be on a terminal from stored text.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")

QUICK = {"tasks": "2", "followups": "0", "delay": "0"}


def _bad(char: str) -> bool:
    return unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"}


# -- the function ----------------------------------------------------------------------------


@given(st.text())
@example(TITLE)
@example(ODD)
@example("\ud800 lone surrogate")
def test_visible_leaves_no_control_or_format_character(text: str) -> None:
    shown = visible(text)
    assert not [c for c in shown if _bad(c)]
    assert visible(shown) == shown  # escaping twice changes nothing


@given(st.text())
def test_visible_lines_keeps_only_line_breaks_and_tabs(text: str) -> None:
    shown = visible(text, lines=True)
    assert not [c for c in shown if _bad(c) and c not in "\n\t"]


@given(st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))))
@example(MARKUP)
@example("naïve 日本語 👍 \u00a0nbsp")
def test_visible_leaves_printable_text_unchanged(text: str) -> None:
    assert visible(text) == text
    assert visible(text, lines=True) == text


def test_visible_escapes_readably() -> None:
    assert visible(TITLE) == "title \\x1b]0;X\\x07 ok \\x1b[2J"
    assert visible("a\tb\nc\r") == "a\\tb\\nc\\r"
    assert visible("a\tb\r\nc", lines=True) == "a\tb\nc"
    assert visible("\u202e\x9b\U000e0041") == "\\u202e\\x9b\\U000e0041"


def test_event_lines_are_escaped_keys_and_values() -> None:
    line = describe_event("task\x1b[2J", {"result": TITLE, "k\x07": "v", "n": 1.5})
    assert not RAW.search(line)
    assert "result=title \\x1b]0;X\\x07 ok \\x1b[2J" in line
    assert line.startswith("task\\x1b[2J ")


# -- the command line ------------------------------------------------------------------------


def _assert_safe(out: str) -> None:
    found = RAW.search(out)
    assert found is None, f"raw {found.group()!r} on stdout: {out[:400]!r}"


async def _seed_hostile(db: Path) -> None:
    """A failed run whose every stored text is hostile, written as a worker writes it."""
    store = await SQLiteStore.open(db)
    try:
        await store.create_run(
            validated(
                RunState,
                run_id="evil",
                goal=f"{TITLE} {ODD} {MARKUP}",
                max_iterations=5,
                agent="demo",
                agent_options={"tasks": TITLE, "note": ODD},
            )
        )
        owner = Owner(host=f"host{TITLE}", pid=99_999_999, pid_started=1.0)
        claimed = await store.claim_run("evil", owner, expected_epoch=0, lease_seconds=60.0)
        task = Task(
            id="t1",
            description=f"describe {TITLE}",
            seq=1,
            attempts=3,
            failures=3,
            status=TaskStatus.FAILED,
            error=f"error {ODD}",
        )
        done = Task(
            id="t2",
            description=f"second {ODD}",
            seq=2,
            attempts=1,
            status=TaskStatus.DONE,
            result=f"result {TITLE}\nline two",
        )
        await store.commit_step(
            "evil",
            Step(
                phase=Phase.EXECUTING,
                iteration=1,
                current_task_id="t1",
                tasks=(task, done),
                results={"t2": f"result {TITLE}"},
                status=RunStatus.FAILED,
                error=f"failed: {TITLE}",
                result=f"partial {ODD}",
                events=(
                    NewEvent(kind=EventKind.TASK_FAILED, data={"error": TITLE, f"k{ODD}": 1}),
                    NewEvent(kind=EventKind.RUN_FAILED, data={"error": f"failed: {TITLE}"}),
                ),
            ),
            epoch=claimed.epoch,
        )
        # A run still held by its (gone) worker, whose host name is hostile.
        await store.create_run(validated(RunState, run_id="held", goal="g", max_iterations=5))
        await store.claim_run("held", owner, expected_epoch=0, lease_seconds=60.0)
    finally:
        await store.close()


def test_run_prints_its_event_lines_escaped(tmp_path: Path) -> None:
    """The demo agent puts the goal in its task descriptions, so the hostile goal is in the
    ``planned`` and ``task_started`` lines ``run`` prints."""
    db = str(tmp_path / "runs.db")
    done = cli("run", f"{TITLE} {ODD}", "--db", db, "--run-id", "r1", *option_args(QUICK))
    assert done.code == 0, done.err
    _assert_safe(done.out)
    assert "\\x1b]0;X\\x07" in done.out  # shown, escaped
    shown = json.loads(cli_here("show", "r1", "--db", db, "--json").out)
    assert shown["goal"] == f"{TITLE} {ODD}"  # stored and read back exactly


async def test_list_and_show_escape_text_and_keep_json_exact(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    await _seed_hostile(db)

    listing = cli_here("list", "--db", str(db))
    assert listing.code == 0, listing.err
    _assert_safe(listing.out)
    assert "\\x1b]0;X\\x07" in listing.out

    show = cli_here("show", "evil", "--db", str(db))
    assert show.code == 0, show.err
    _assert_safe(show.out)
    for piece in ("goal: title \\x1b]0;X", "\\u202eevil", "\\x9b31m"):
        assert piece in show.out, piece
    assert "partial c1 \\x9b31m" in show.out
    assert MARKUP in show.out  # markup shown as written

    held = cli_here("show", "held", "--db", str(db))
    _assert_safe(held.out)
    assert f"on host{visible(TITLE)}" in held.out

    documents = {
        d["run_id"]: d for d in json.loads(cli_here("list", "--db", str(db), "--json").out)
    }
    assert documents["evil"]["goal"] == f"{TITLE} {ODD} {MARKUP}"
    assert documents["held"]["worker_host"] == f"host{TITLE}"
    document = json.loads(cli_here("show", "evil", "--db", str(db), "--json").out)
    assert document["error"] == f"failed: {TITLE}"
    assert document["result"] == f"partial {ODD}"
    tasks = {task["id"]: task for task in document["tasks"]}
    assert tasks["t1"]["description"] == f"describe {TITLE}"
    assert tasks["t1"]["error"] == f"error {ODD}"
    assert tasks["t2"]["result"] == f"result {TITLE}\nline two"
    assert document["results"] == {"t2": f"result {TITLE}"}
    kinds = {event["kind"]: event["data"] for event in document["events"]}
    assert kinds["task_failed"] == {"error": TITLE, f"k{ODD}": 1}
