"""Prune on a real SQLite file: the delete statement itself re-checks status and age (a run
chosen as a candidate, then claimed by a worker before the delete's transaction, stays), and
no table is left holding rows of a pruned run (every table with a ``run_id`` column: a table
a later migration adds must reference runs ON DELETE CASCADE)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from storekit import OWNER, FakeClock, new_run, task

from nanoagent_core.models import Phase, RunStatus
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SQLiteStore, sql_prune
from nanoagent_core.sqltext import fill


async def _finished(store: SQLiteStore, run_id: str, status: RunStatus | None) -> None:
    await store.create_run(new_run(run_id))
    run = await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)
    step = Step(
        phase=Phase.DONE,
        iteration=1,
        tasks=(task("a"),),
        results={"a": "ok"},
        events=(NewEvent(kind="note"),),
        status=status,
    )
    await store.commit_step(run_id, step, epoch=run.epoch)


async def test_delete_statement_rechecks_status_and_age(
    sqlite_store: SQLiteStore, db_path: Path, clock: FakeClock
) -> None:
    await _finished(sqlite_store, "old-done", RunStatus.COMPLETED)
    await _finished(sqlite_store, "old-running", None)
    clock.advance(3600)
    await _finished(sqlite_store, "young-done", RunStatus.COMPLETED)
    await _finished(sqlite_store, "newest", None)
    # The candidates as a stale read might have chosen them: all four. The delete, run as
    # the store runs it, removes only the one that is still finished and old.
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        params = {
            "ids": json.dumps(["old-done", "old-running", "young-done", "newest"]),
            "statuses": json.dumps(["completed", "aborted", "failed"]),
            "cutoff": clock.now.timestamp() - 60,
        }
        conn.execute("BEGIN IMMEDIATE")
        deleted = conn.execute(fill(sql_prune.PRUNE_DELETE, keep=""), params).rowcount
        conn.execute("COMMIT")
        left = sorted(row[0] for row in conn.execute("SELECT run_id FROM runs"))
    finally:
        conn.close()
    assert deleted == 1
    assert left == ["newest", "old-running", "young-done"]


async def test_no_table_keeps_rows_of_a_pruned_run(
    sqlite_store: SQLiteStore, db_path: Path, clock: FakeClock
) -> None:
    for i in range(5):
        await _finished(sqlite_store, f"run-{i}", RunStatus.FAILED)
    await _finished(sqlite_store, "newest", None)
    clock.advance(10)
    got = await sqlite_store.delete_finished_runs(
        statuses=[RunStatus.FAILED], older_than=timedelta(0)
    )
    assert got.runs == 5
    conn = sqlite3.connect(db_path)
    try:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if any(col[1] == "run_id" for col in conn.execute(f"PRAGMA table_info({name})"))
        ]
        assert {"tasks", "results", "events"} <= set(tables)
        for table in tables:
            (orphans,) = conn.execute(
                f"SELECT count(*) FROM {table} WHERE run_id NOT IN (SELECT run_id FROM runs)"
            ).fetchone()
            assert orphans == 0, table
    finally:
        conn.close()
