"""``nanoagent list``: ids are never cut, and ``aborting`` is a status like the others
(issue 14 items 1 and 8)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tuikit import EVERY_STATUS, Seed, seed_database
from tuikit import nanoagent as _nanoagent  # in this process: the claims are what it prints

LONG = "demo-survey-2-of-a-much-longer-batch"


def test_list_never_cuts_an_id_and_shows_aborting(here: Path) -> None:
    asyncio.run(seed_database(here / "runs.db", (*EVERY_STATUS, Seed(LONG, "a long id"))))
    listed = _nanoagent("list", "--db", "runs.db")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    words = {line.split()[1]: line.split()[0] for line in lines[1:]}
    assert words[LONG] == "running"  # whole: pasted into show, it works
    assert words["stop-44aa10"] == "aborting"
    assert "*" not in listed.stdout
    shown = _nanoagent("show", LONG, "--db", "runs.db")
    assert shown.returncode == 0, shown.stderr

    aborting = _nanoagent("list", "--json", "--status", "aborting", "--db", "runs.db")
    assert aborting.returncode == 0, aborting.stderr
    assert [row["run_id"] for row in json.loads(aborting.stdout)] == ["stop-44aa10"]
    running = _nanoagent("list", "--json", "--status", "running", "--db", "runs.db")
    assert "stop-44aa10" not in [row["run_id"] for row in json.loads(running.stdout)]
