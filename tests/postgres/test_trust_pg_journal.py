"""Migration 3 (the journal and the ledger) on PostgreSQL: a version-2 schema with a run
keeps it, gets zero totals and an empty journal, ends with the schema a fresh one gets, and
journals from then on; deleting a run deletes its journal."""

from __future__ import annotations

from pgkit import drop_schema, new_schema_name, sql_rows
from storekit import OWNER, task
from test_pg_schema import info, shape

from nanoagent_core.models import Attempt, Phase
from nanoagent_core.postgres import SCHEMA_VERSION, PostgresStore
from nanoagent_core.protocols import Step

JOURNAL_VERSION = 3


async def test_a_version_2_schema_migrates_keeping_its_runs_with_zero_totals(
    pg_url: str, schema: str
) -> None:
    from nanoagent_core.postgres import sql as pg_sql

    def run(statement: str) -> list[tuple[object, ...]]:
        return sql_rows(pg_url, pg_sql.render(statement, schema))

    for statements in ((*pg_sql.BOOTSTRAP,), *pg_sql.MIGRATIONS[: JOURNAL_VERSION - 1]):
        for statement in statements:
            run(statement)
    run(f"UPDATE {{schema}}.schema_info SET version = {JOURNAL_VERSION - 1}")
    run(
        "INSERT INTO {schema}.runs (run_id, goal, max_iterations, agent, phase, status,"
        " created_at, updated_at, tasks_total) VALUES ('kept', 'a goal', 5, 'demo',"
        " 'executing', 'interrupted', now(), now(), 1)"
    )
    run(
        "INSERT INTO {schema}.tasks (run_id, task_id, seq, description, status, priority,"
        " attempts) VALUES ('kept', 't1', 0, 'first', 'pending', 5, 1)"
    )
    store = await PostgresStore.open(pg_url, schema=schema)
    try:
        kept = await store.get_run("kept")
        assert (kept.goal, kept.status.value, kept.tasks_total) == ("a goal", "interrupted", 1)
        assert (kept.requests, kept.tokens_in, kept.tokens_out) == (0, 0, 0)
        assert (kept.cost_usd, kept.cost_unknown) == (None, 0)
        assert await store.get_attempts("kept") == []
        claimed = await store.claim_run("kept", OWNER, expected_epoch=0, lease_seconds=30)
        usage = {"requests": 1, "tokens_in": 9, "tokens_out": 2, "cost_usd": None}
        entry = Attempt(task_id="t1", attempt=2, outcome="failed", messages="[]", **usage)
        after = await store.commit_step(
            "kept", Step(phase=Phase.EXECUTING, iteration=1, attempts=(entry,)), epoch=claimed.epoch
        )
        assert (after.requests, after.tokens_in, after.cost_usd, after.cost_unknown) == (
            1,
            9,
            None,
            1,
        )
        assert await store.get_attempts("kept") == [entry]
    finally:
        await store.close()
    fresh = new_schema_name()
    try:
        await (await PostgresStore.open(pg_url, schema=fresh)).close()
        assert info(pg_url, schema) == info(pg_url, fresh) == [("nanoagent", SCHEMA_VERSION)]
        assert shape(pg_url, schema) == shape(pg_url, fresh)
    finally:
        drop_schema(pg_url, fresh)


async def test_deleting_a_run_deletes_its_journal(pg_url: str, schema: str) -> None:
    store = await PostgresStore.open(pg_url, schema=schema)
    try:
        from storekit import new_run

        await store.create_run(new_run("gone"))
        claimed = await store.claim_run("gone", OWNER, expected_epoch=0, lease_seconds=30)
        entry = Attempt(task_id="t1", attempt=1, outcome="done")
        step = Step(phase=Phase.EXECUTING, iteration=1, tasks=(task("t1"),), attempts=(entry,))
        await store.commit_step("gone", step, epoch=claimed.epoch)
    finally:
        await store.close()
    count = f"SELECT count(*) FROM {schema}.attempts"
    assert sql_rows(pg_url, count) == [(1,)]
    sql_rows(pg_url, f"DELETE FROM {schema}.runs WHERE run_id = 'gone'")
    assert sql_rows(pg_url, count) == [(0,)]
