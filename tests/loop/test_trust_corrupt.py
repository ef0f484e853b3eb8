"""Issue 9, items 5 and 13: a corrupt SQLite file is refused by every writer and never
written; one unreadable run row is shown as damaged while the rest stays usable."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from pathlib import Path

from loopkit import clean_env, cli, cli_here

from nanoagent_core.actions import new_run
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.live import LiveData, SortMode

GOAL = "write a haiku about the sea"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_corrupt_middle_page_is_refused_by_writers_and_not_written(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    store = await SQLiteStore.open(db)
    try:
        for n in range(300):  # a real multi-page database, through the store
            await store.create_run(new_run(f"r{n:03d}", f"{GOAL} number {n} " + "x" * 300))
    finally:
        await store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.close()
    assert pages > 20
    middle = pages // 2  # not the header page, not the first page of any table's root
    raw = bytearray(db.read_bytes())
    noise = random.Random(9).randbytes(page_size - 200)
    raw[middle * page_size + 100 : middle * page_size + 100 + len(noise)] = noise
    db.write_bytes(bytes(raw))
    check = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    problems = check.execute("PRAGMA integrity_check").fetchall()
    check.close()
    assert problems != [("ok",)]
    before = digest(db)
    env = clean_env(HOME=str(tmp_path))
    for args in (
        ["run", GOAL, "--db", str(db), "--option", "tasks=1"],
        ["resume", "r001", "--db", str(db)],
        ["abort", "r002", "--db", str(db)],
    ):
        # the first through the console script in a process of its own, the rest here
        done = (cli if args[0] == "run" else cli_here)(*args, env=env)
        assert done.code == 2, (args, done)
        assert len(done.err_lines) == 1, done.err
        assert "damaged database" in done.err
        assert digest(db) == before, args


async def damage_one(db: Path) -> None:
    store = await SQLiteStore.open(db)
    try:
        for run_id in ("good-1", "bad", "good-2"):
            # waiting for a worker for an hour: "running" for the whole test, however long
            # its commands take (the default 10 s grace ran out on a loaded machine and the
            # good runs showed as crashed)
            run = new_run(run_id, f"{GOAL} ({run_id})", claim_grace=3600)
            await store.create_run(run)
    finally:
        await store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE runs SET agent_options = 'not json {' WHERE run_id = 'bad'")
    conn.close()


async def test_one_unreadable_row_is_shown_damaged_the_rest_usable(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    await damage_one(db)
    env = clean_env(HOME=str(tmp_path))
    listed = cli_here("list", "--db", str(db), env=env)
    assert listed.code == 0, listed
    lines = {line.split()[1]: line.split()[0] for line in listed.out.splitlines()[1:]}
    assert lines == {"good-1": "running", "bad": "damaged", "good-2": "running"}
    as_json = cli_here("list", "--json", "--db", str(db), env=env)
    assert as_json.code == 0, as_json
    by_id = {r["run_id"]: r for r in json.loads(as_json.out)}
    assert by_id["bad"]["status"] == "damaged"
    assert "agent_options" in by_id["bad"]["damaged"]
    assert by_id["good-1"]["damaged"] is None
    good = cli_here("show", "good-1", "--db", str(db), env=env)
    assert good.code == 0, good
    bad = cli_here("show", "bad", "--db", str(db), env=env)
    assert bad.code == 0, bad
    assert "damaged: agent_options" in bad.out.splitlines()[0]
    for args in (["resume", "bad"], ["abort", "bad"]):
        refused = cli_here(*args, "--db", str(db), env=env)
        assert refused.code == 2, refused
        assert refused.err_lines == [refused.err_lines[0]]
        assert "is damaged" in refused.err
    live = LiveData(str(db))
    try:
        from nanoagent_core.models import utc_now

        await live.poll(utc_now())
        assert live.health.value == "live", live.message
        words = {run.run_id: word for run, word in live.visible(utc_now(), SortMode.CREATED)}
        assert words == {"good-1": "running", "bad": "damaged", "good-2": "running"}
    finally:
        await live.close()
