"""Migration 7 (the planner's and reflector's journal) on SQLite: a version-6 database with an
llm run (its tasks, its journaled attempts, its totals) keeps all of it, gets an empty
``model_calls`` table, ends with the schema a fresh database gets, and journals calls from
then on (its totals moving from where they were)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storekit import OWNER

from nanoagent_core.models import ModelCall, Phase
from nanoagent_core.protocols import Step
from nanoagent_core.sqlite import SCHEMA_VERSION, SQLiteStore
from nanoagent_core.sqlite import sql as schema

CALLS_VERSION = 7


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


def version_6(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    for statements in schema.MIGRATIONS[: CALLS_VERSION - 1]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {CALLS_VERSION - 1}")
    conn.execute(schema.SET_APPLICATION_ID)
    conn.execute(
        "INSERT INTO runs (run_id, goal, max_iterations, agent, phase, iteration, status,"
        " created_at, updated_at, tasks_total, tasks_done, requests, tokens_in, tokens_out,"
        " cost_unknown) VALUES ('kept', 'a goal', 5, 'llm', 'reflecting', 1, 'interrupted',"
        " 1.0, 1.0, 1, 1, 1, 50, 5, 1)"
    )
    conn.execute(
        "INSERT INTO tasks (run_id, task_id, seq, description, status, priority, result,"
        " attempts) VALUES ('kept', 't1', 0, 'first', 'done', 5, 'ok', 1)"
    )
    conn.execute(
        "INSERT INTO attempts (run_id, task_id, attempt, outcome, messages, model, requests,"
        " tokens_in, tokens_out) VALUES ('kept', 't1', 1, 'done', '[]', 'test', 1, 50, 5)"
    )
    conn.commit()
    conn.close()


async def test_a_version_6_database_keeps_its_run_and_journals_calls_from_then_on(
    tmp_path: Path,
) -> None:
    old = tmp_path / "v6.db"
    version_6(old)
    assert "model_calls" not in str(shape(old)[1])
    store = await SQLiteStore.open(old)
    try:
        kept = await store.get_run("kept")
        assert (kept.goal, kept.status.value, kept.tasks_done, kept.damaged) == (
            "a goal",
            "interrupted",
            1,
            None,
        )
        assert (kept.requests, kept.tokens_in, kept.tokens_out, kept.cost_unknown) == (1, 50, 5, 1)
        assert [(a.task_id, a.outcome, a.tokens_in) for a in await store.get_attempts("kept")] == [
            ("t1", "done", 50)
        ]
        assert await store.get_calls("kept") == []
        run = await store.claim_run("kept", OWNER, expected_epoch=0, lease_seconds=30)
        reflection = ModelCall(
            role="reflector", iteration=1, outcome="done", messages="[]", requests=1, tokens_in=7
        )
        after = await store.commit_step(
            "kept", Step(phase=Phase.EXECUTING, iteration=2, calls=(reflection,)), epoch=run.epoch
        )
        assert (after.requests, after.tokens_in, after.tokens_out, after.cost_unknown) == (
            2,
            57,
            5,
            2,
        )
        assert await store.get_calls("kept") == [reflection.model_copy(update={"call": 1})]
    finally:
        await store.close()

    fresh = tmp_path / "fresh.db"
    await (await SQLiteStore.open(fresh)).close()
    assert shape(old) == shape(fresh)
    assert shape(fresh)[0] == SCHEMA_VERSION >= CALLS_VERSION


async def test_a_version_6_database_is_refused_read_only_in_one_line(tmp_path: Path) -> None:
    from nanoagent_core.errors import DatabaseError

    old = tmp_path / "v6.db"
    version_6(old)
    with pytest.raises(DatabaseError, match="schema version 6 is older than 7; open it once"):
        await SQLiteStore.open(old, read_only=True)


async def test_deleting_a_run_deletes_its_calls(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    store = await SQLiteStore.open(path)
    try:
        from storekit import new_run

        await store.create_run(new_run("gone"))
        run = await store.claim_run("gone", OWNER, expected_epoch=0, lease_seconds=30)
        plan = ModelCall(role="planner", iteration=0, outcome="done")
        await store.commit_step(
            "gone", Step(phase=Phase.EXECUTING, iteration=1, calls=(plan,)), epoch=run.epoch
        )
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        assert conn.execute("SELECT count(*) FROM model_calls").fetchone()[0] == 1
        conn.execute("DELETE FROM runs WHERE run_id = 'gone'")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM model_calls").fetchone()[0] == 0
    finally:
        conn.close()
