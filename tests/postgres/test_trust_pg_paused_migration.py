"""Migration 5 (the status ``paused``, its reason, the budget) on PostgreSQL: a version-3
schema keeps its runs, tasks, events and journal, ends with the schema a fresh one gets (the
constraints included), and takes a pause with an attempt cut under its reason."""

from __future__ import annotations

import psycopg
import pytest
from pgkit import drop_schema, new_schema_name, sql_rows
from storekit import OWNER
from test_pg_schema import info, shape

from nanoagent_core.models import Attempt, PauseReason, Phase, RunStatus
from nanoagent_core.pause import pause_step
from nanoagent_core.postgres import SCHEMA_VERSION, PostgresStore

PAUSED_VERSION = 5


async def test_a_version_4_schema_keeps_everything_and_can_pause(pg_url: str, schema: str) -> None:
    from nanoagent_core.postgres import sql as pg_sql

    def run(statement: str) -> list[tuple[object, ...]]:
        return sql_rows(pg_url, pg_sql.render(statement, schema))

    for statements in ((*pg_sql.BOOTSTRAP,), *pg_sql.MIGRATIONS[: PAUSED_VERSION - 1]):
        for statement in statements:
            run(statement)
    run(f"UPDATE {{schema}}.schema_info SET version = {PAUSED_VERSION - 1}")
    run(
        "INSERT INTO {schema}.runs (run_id, goal, max_iterations, agent, phase, iteration,"
        " status, created_at, updated_at, tasks_total, tokens_in) VALUES ('kept', 'a goal', 5,"
        " 'llm', 'executing', 1, 'interrupted', now(), now(), 1, 300)"
    )
    run(
        "INSERT INTO {schema}.tasks (run_id, task_id, seq, description, status, priority,"
        " attempts) VALUES ('kept', 't1', 0, 'first', 'pending', 5, 1)"
    )
    run(
        "INSERT INTO {schema}.attempts (run_id, task_id, attempt, outcome, tokens_in)"
        " VALUES ('kept', 't1', 1, 'failed', 300)"
    )
    store = await PostgresStore.open(pg_url, schema=schema)
    try:
        kept = await store.get_run("kept")
        assert (kept.status, kept.tokens_in, kept.damaged) == (RunStatus.INTERRUPTED, 300, None)
        assert (kept.pause_reason, kept.max_tokens, kept.max_cost_usd) == (None, None, None)
        assert [a.outcome for a in await store.get_attempts("kept")] == ["failed"]
        claimed = await store.claim_run("kept", OWNER, expected_epoch=0, lease_seconds=30)
        cut = Attempt(task_id="t1", attempt=2, outcome="budget", requests=1, tokens_in=7)
        step = pause_step(
            PauseReason.BUDGET,
            "307 of 300 tokens spent",
            phase=Phase.EXECUTING,
            iteration=1,
            current_task_id="t1",
            attempts=(cut,),
        )
        paused = await store.commit_step("kept", step, epoch=claimed.epoch)
        assert (paused.status, paused.pause_reason, paused.tokens_in) == (
            RunStatus.PAUSED,
            PauseReason.BUDGET,
            307,
        )
        assert [a.outcome for a in await store.get_attempts("kept")] == ["failed", "budget"]
    finally:
        await store.close()
    fresh = new_schema_name()
    try:
        await (await PostgresStore.open(pg_url, schema=fresh)).close()
        assert info(pg_url, schema) == info(pg_url, fresh) == [("nanoagent", SCHEMA_VERSION)]
        assert shape(pg_url, schema) == shape(pg_url, fresh)  # constraints included
    finally:
        drop_schema(pg_url, fresh)


async def test_the_schema_refuses_a_reason_without_paused(pg_url: str, schema: str) -> None:
    await (await PostgresStore.open(pg_url, schema=schema)).close()
    insert = (
        f'INSERT INTO "{schema}".runs (run_id, goal, max_iterations, agent, phase, status,'
        " created_at, updated_at, pause_reason) VALUES (%s, 'g', 5, 'demo', 'planning', %s,"
        " now(), now(), %s)"
    )
    sql_rows(pg_url, insert, ("ok", "paused", "budget"))
    for run_id, status, reason in (("a", "paused", None), ("b", "running", "budget")):
        with pytest.raises(psycopg.errors.CheckViolation):
            sql_rows(pg_url, insert, (run_id, status, reason))
