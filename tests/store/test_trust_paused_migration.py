"""Migration 5 (the status ``paused``, its reason, the budget) on SQLite: the runs and attempts
tables are rebuilt (SQLite cannot change a CHECK), so a version-4 database must keep every run
with its tasks, results, events and journal (dropping the old runs table must not cascade),
end with the schema a fresh database gets, keep its foreign keys working, and take a pause."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storekit import OWNER
from test_trust_journal_migration import shape

from nanoagent_core.models import PauseReason, Phase, RunStatus, TaskStatus
from nanoagent_core.pause import pause_step
from nanoagent_core.sqlite import SCHEMA_VERSION, SQLiteStore
from nanoagent_core.sqlite import sql as schema

PAUSED_VERSION = 5


def version_4_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    for statements in schema.MIGRATIONS[: PAUSED_VERSION - 1]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {PAUSED_VERSION - 1}")
    conn.execute(schema.SET_APPLICATION_ID)
    conn.execute(
        "INSERT INTO runs (run_id, goal, max_iterations, agent, phase, iteration, status,"
        " created_at, updated_at, tasks_total, tasks_done, requests, tokens_in, tokens_out,"
        " cost_usd, cost_unknown) VALUES ('kept', 'a goal', 5, 'llm', 'executing', 2,"
        " 'interrupted', 1.0, 2.0, 2, 1, 3, 300, 40, 0.25, 1),"
        " ('done', 'finished', 5, 'demo', 'done', 1, 'completed', 1.0, 1.5, 0, 0, 0, 0, 0,"
        " NULL, 0)"
    )
    conn.execute(
        "INSERT INTO tasks (run_id, task_id, seq, description, status, priority, result,"
        " attempts) VALUES ('kept', 't1', 0, 'first', 'done', 5, 'ok', 1),"
        " ('kept', 't2', 1, 'second', 'pending', 5, NULL, 1)"
    )
    conn.execute("INSERT INTO results (run_id, task_id, result) VALUES ('kept', 't1', 'ok')")
    conn.execute(
        "INSERT INTO events (run_id, ts, kind, data) VALUES ('kept', 1.0, 'run_created', '{}'),"
        " ('done', 1.0, 'run_created', '{}'), ('kept', 2.0, 'task_done', '{\"task_id\": \"t1\"}')"
    )
    conn.execute(
        "INSERT INTO attempts (run_id, task_id, attempt, outcome, messages, model, requests,"
        " tokens_in, tokens_out, cost_usd, seconds) VALUES"
        " ('kept', 't1', 1, 'done', '[]', 'gpt-4o', 3, 300, 40, 0.25, 1.5)"
    )
    conn.commit()
    conn.close()


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        tables = ("runs", "tasks", "results", "events", "attempts")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


async def test_a_version_4_database_keeps_everything_and_can_pause(tmp_path: Path) -> None:
    old = tmp_path / "v3.db"
    version_4_database(old)
    before = counts(old)
    assert before == {"runs": 2, "tasks": 2, "results": 1, "events": 3, "attempts": 1}

    store = await SQLiteStore.open(old)
    try:
        assert counts(old) == before  # the rebuild dropped the old tables without cascading
        kept = await store.get_run("kept")
        assert (kept.status, kept.phase, kept.iteration, kept.updated_at.timestamp()) == (
            RunStatus.INTERRUPTED,
            Phase.EXECUTING,
            2,
            2.0,
        )
        assert (kept.tasks_total, kept.tasks_done, kept.tokens_in, kept.cost_usd) == (
            2,
            1,
            300,
            0.25,
        )
        assert (kept.pause_reason, kept.pause_detail, kept.max_tokens, kept.max_cost_usd) == (
            None,
            None,
            None,
            None,
        )
        assert kept.damaged is None
        assert [t.status for t in await store.get_all_tasks("kept")] == [
            TaskStatus.DONE,
            TaskStatus.PENDING,
        ]
        assert await store.get_all_results("kept") == {"t1": "ok"}
        [journal] = await store.get_attempts("kept")
        assert (journal.outcome, journal.tokens_in, journal.model) == ("done", 300, "gpt-4o")
        assert [e.kind for e in await store.read_events(run_id="kept")] == [
            "run_created",
            "task_done",
        ]
        # the migrated run pauses, and its cut attempt is journaled under the reason
        run = await store.claim_run("kept", OWNER, expected_epoch=0, lease_seconds=30)
        from nanoagent_core.models import Attempt

        cut = Attempt(task_id="t2", attempt=2, outcome="budget", requests=1, tokens_in=5)
        step = pause_step(
            PauseReason.BUDGET,
            "305 of 300 tokens spent",
            phase=Phase.EXECUTING,
            iteration=2,
            current_task_id="t2",
            attempts=(cut,),
        )
        paused = await store.commit_step("kept", step, epoch=run.epoch)
        assert (paused.status, paused.pause_reason) == (RunStatus.PAUSED, PauseReason.BUDGET)
        assert (await store.get_run("kept")).pause_detail == "305 of 300 tokens spent"
    finally:
        await store.close()

    fresh = tmp_path / "fresh.db"
    await (await SQLiteStore.open(fresh)).close()
    assert shape(old) == shape(fresh)
    assert shape(fresh)[0] == SCHEMA_VERSION >= PAUSED_VERSION

    conn = sqlite3.connect(old)
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # the rebuilt runs table is still the parent: deleting a run cascades to what it owns
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM runs WHERE run_id = 'kept'")
        conn.commit()
        assert counts(old) == {"runs": 1, "tasks": 0, "results": 0, "events": 1, "attempts": 0}
    finally:
        conn.close()


async def test_the_schema_refuses_a_reason_without_paused_and_paused_without_one(
    tmp_path: Path,
) -> None:
    """The CHECK constraints the rebuild exists for (written outside the store, as a hand
    edit would)."""
    path = tmp_path / "n.db"
    await (await SQLiteStore.open(path)).close()
    conn = sqlite3.connect(path)
    try:
        insert = (
            "INSERT INTO runs (run_id, goal, max_iterations, agent, phase, status, created_at,"
            " updated_at, pause_reason) VALUES (?, 'g', 5, 'demo', 'planning', ?, 1.0, 1.0, ?)"
        )
        conn.execute(insert, ("ok", "paused", "budget"))
        for run_id, status, reason in (("a", "paused", None), ("b", "running", "budget")):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                conn.execute(insert, (run_id, status, reason))
    finally:
        conn.close()
