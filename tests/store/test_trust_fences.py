"""Both of the SQLite commit's epoch fences, each on its own (issue 15, item 7).

``commit_step`` checks the epoch first (so a stale worker is told "lease lost" whatever else
its step holds) and its final UPDATE carries ``AND epoch = :epoch`` as well. Either alone
keeps a stale worker's step out of the database; each has a test that fails without it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storekit import OWNER, new_run, snapshot, task

from nanoagent_core import store_rules as rules
from nanoagent_core.errors import LeaseLostError
from nanoagent_core.models import Phase
from nanoagent_core.protocols import NewEvent, Step, Store
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.sqlite import sql as schema


async def test_a_stale_step_is_lease_lost_whatever_else_it_holds(store: Store) -> None:
    """The first fence: a step from a stale epoch whose result names a task that does not
    exist is refused as a lost lease (not as a bad result), and nothing of it is written."""
    await store.create_run(new_run("run-1"))
    first = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    await store.claim_run(
        "run-1", OWNER, expected_epoch=first.epoch, lease_seconds=30, owner_gone=True
    )
    before = await snapshot(store, "run-1")
    stale = Step(
        phase=Phase.EXECUTING,
        iteration=1,
        tasks=(task("t1"),),
        results={"ghost": "a result for no task"},
        events=(NewEvent(kind="note"),),
    )
    with pytest.raises(LeaseLostError):
        await store.commit_step("run-1", stale, epoch=first.epoch)
    assert await snapshot(store, "run-1") == before


async def test_the_final_update_is_fenced_by_the_epoch_itself(db_path: Path) -> None:
    """The second fence: the statement that ends every step (FINISH_STEP) changes nothing
    for a stale epoch, even when the check before it is skipped."""
    store = await SQLiteStore.open(db_path)
    try:
        await store.create_run(new_run("run-1"))
        run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    finally:
        await store.close()
    params = {
        "run_id": "run-1",
        "now": 1.0,
        "phase": "executing",
        "iteration": 7,
        "current_task_id": None,
        "status": "failed",
        "result": None,
        "error": "from a stale worker",
        "finished": True,
        "release": True,
        "pause_reason": None,
        "pause_detail": None,
        **rules.ledger_params(()),
    }
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        stale = conn.execute(schema.FINISH_STEP, {**params, "epoch": run.epoch - 1}).fetchall()
        assert stale == []
        row = conn.execute("SELECT status, iteration FROM runs WHERE run_id = 'run-1'").fetchone()
        assert row == ("running", 0)
        current = conn.execute(schema.FINISH_STEP, {**params, "epoch": run.epoch}).fetchall()
        assert len(current) == 1  # the same statement at the current epoch does write
    finally:
        conn.close()
