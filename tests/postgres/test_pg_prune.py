"""Prune on a real PostgreSQL server: a run chosen as a candidate, then claimed by a worker
whose transaction holds the row while prune's delete waits for it, is not deleted (the delete
re-checks status and age once the claim commits)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import LiteralString, cast

import psycopg
from pgkit import new_run, wait_for

from nanoagent_core.models import Owner, Phase, RunStatus
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.protocols import NewEvent, Step

OWNER = Owner(host="test-host", pid=4242, pid_started=17.0)
FINISHED = [RunStatus.COMPLETED, RunStatus.ABORTED, RunStatus.FAILED]


async def _run(store: PostgresStore, run_id: str, status: RunStatus | None) -> None:
    await store.create_run(new_run(run_id))
    run = await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)
    step = Step(phase=Phase.DONE, iteration=1, events=(NewEvent(kind="note"),), status=status)
    await store.commit_step(run_id, step, epoch=run.epoch)


async def test_a_claim_committed_while_the_delete_waits_keeps_the_run(
    store: PostgresStore, pg_url: str, schema: str
) -> None:
    await _run(store, "victim", RunStatus.COMPLETED)
    await _run(store, "newest", None)  # holds the newest event
    claimer = await psycopg.AsyncConnection.connect(pg_url)
    watcher = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    try:
        # A worker's claim, not yet committed: the row is locked.
        claim = (
            f"UPDATE \"{schema}\".runs SET status = 'running', finished_at = NULL,"
            " epoch = epoch + 1 WHERE run_id = 'victim'"
        )
        await claimer.execute(cast(LiteralString, claim))
        pruning = asyncio.create_task(
            store.delete_finished_runs(statuses=FINISHED, older_than=timedelta(0))
        )

        async def delete_waits() -> bool:
            cur = await watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE %s",
                (f'%DELETE FROM "{schema}".runs%',),
            )
            row = await cur.fetchone()
            return row is not None and row[0] > 0

        await wait_for(delete_waits, what="prune's delete waiting on the claimed row")
        await claimer.commit()
        got = await asyncio.wait_for(pruning, 60)
    finally:
        await claimer.close()
        await watcher.close()
    assert got.candidates == 1
    assert got.runs == 0
    assert (await store.get_run("victim")).status is RunStatus.RUNNING
