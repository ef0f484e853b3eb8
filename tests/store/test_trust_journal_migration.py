"""Migration 3 (the journal and the ledger) on SQLite: a version-2 database with a run and its
tasks keeps them, gets zero totals and an empty journal, ends with the schema a fresh database
gets, and journals from then on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storekit import OWNER, new_run, task

from nanoagent_core.models import Attempt, Phase, TaskStatus
from nanoagent_core.protocols import Step
from nanoagent_core.sqlite import SCHEMA_VERSION, SQLiteStore
from nanoagent_core.sqlite import sql as schema

JOURNAL_VERSION = 3


def shape(path: Path) -> tuple[int, list[tuple[str, str, str]]]:
    db = sqlite3.connect(path)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        rows = db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
    finally:
        db.close()
    return version, rows


async def test_a_version_2_database_migrates_keeping_its_runs_with_zero_totals(
    tmp_path: Path,
) -> None:
    old = tmp_path / "v2.db"
    conn = sqlite3.connect(old)
    for statements in schema.MIGRATIONS[: JOURNAL_VERSION - 1]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {JOURNAL_VERSION - 1}")
    conn.execute(schema.SET_APPLICATION_ID)
    conn.execute(
        "INSERT INTO runs (run_id, goal, max_iterations, agent, phase, iteration, status,"
        " created_at, updated_at, tasks_total, tasks_done) VALUES ('kept', 'a goal', 5, 'demo',"
        " 'executing', 1, 'interrupted', 1.0, 1.0, 2, 1)"
    )
    conn.execute(
        "INSERT INTO tasks (run_id, task_id, seq, description, status, priority, result,"
        " attempts) VALUES ('kept', 't1', 0, 'first', 'done', 5, 'ok', 1),"
        " ('kept', 't2', 1, 'second', 'pending', 5, NULL, 1)"
    )
    conn.commit()
    conn.close()

    store = await SQLiteStore.open(old)
    try:
        kept = await store.get_run("kept")
        assert (kept.goal, kept.status.value, kept.tasks_total, kept.tasks_done) == (
            "a goal",
            "interrupted",
            2,
            1,
        )
        assert (kept.requests, kept.tokens_in, kept.tokens_out) == (0, 0, 0)
        assert (kept.cost_usd, kept.cost_unknown) == (None, 0)
        assert [t.status for t in await store.get_all_tasks("kept")] == [
            TaskStatus.DONE,
            TaskStatus.PENDING,
        ]
        assert await store.get_attempts("kept") == []
        # the migrated run journals its next attempt
        run = await store.claim_run("kept", OWNER, expected_epoch=0, lease_seconds=30)
        usage = {"requests": 2, "tokens_in": 30, "tokens_out": 4, "cost_usd": 0.5}
        entry = Attempt(task_id="t2", attempt=2, outcome="done", messages="[]", **usage)
        after = await store.commit_step(
            "kept", Step(phase=Phase.EXECUTING, iteration=2, attempts=(entry,)), epoch=run.epoch
        )
        assert (after.requests, after.tokens_in, after.tokens_out, after.cost_usd) == (
            2,
            30,
            4,
            0.5,
        )
        assert await store.get_attempts("kept") == [entry]
    finally:
        await store.close()

    fresh = tmp_path / "fresh.db"
    await (await SQLiteStore.open(fresh)).close()
    assert shape(old) == shape(fresh)
    assert shape(fresh)[0] == SCHEMA_VERSION >= JOURNAL_VERSION


async def test_deleting_a_run_deletes_its_journal(tmp_path: Path) -> None:
    """The journal cascades with its run (through its tasks), as results and events do: a
    command that deletes runs leaves no orphan entry."""
    path = tmp_path / "n.db"
    store = await SQLiteStore.open(path)
    try:
        await store.create_run(new_run("gone"))
        run = await store.claim_run("gone", OWNER, expected_epoch=0, lease_seconds=30)
        entry = Attempt(task_id="t1", attempt=1, outcome="done")
        step = Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("t1"),), attempts=(entry,))
        await store.commit_step("gone", step, epoch=run.epoch)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1
        conn.execute("DELETE FROM runs WHERE run_id = 'gone'")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0
    finally:
        conn.close()
