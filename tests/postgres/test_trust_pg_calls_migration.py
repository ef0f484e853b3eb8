"""Migration 7 (the planner's and reflector's journal) on PostgreSQL: a version-6 schema
keeps its run, tasks and journal, ends with the schema a fresh one gets (constraints
included), and journals planner and reflector calls from then on."""

from __future__ import annotations

from pgkit import drop_schema, new_schema_name, sql_rows
from storekit import OWNER
from test_pg_schema import info, shape

from nanoagent_core.models import ModelCall, Phase
from nanoagent_core.postgres import SCHEMA_VERSION, PostgresStore
from nanoagent_core.protocols import Step

CALLS_VERSION = 7


async def test_a_version_6_schema_keeps_everything_and_journals_calls(
    pg_url: str, schema: str
) -> None:
    from nanoagent_core.postgres import sql as pg_sql

    def run(statement: str) -> list[tuple[object, ...]]:
        return sql_rows(pg_url, pg_sql.render(statement, schema))

    for statements in ((*pg_sql.BOOTSTRAP,), *pg_sql.MIGRATIONS[: CALLS_VERSION - 1]):
        for statement in statements:
            run(statement)
    run(f"UPDATE {{schema}}.schema_info SET version = {CALLS_VERSION - 1}")
    run(
        "INSERT INTO {schema}.runs (run_id, goal, max_iterations, agent, phase, iteration,"
        " status, created_at, updated_at, tasks_total, requests, tokens_in) VALUES ('kept',"
        " 'a goal', 5, 'llm', 'reflecting', 1, 'interrupted', now(), now(), 1, 1, 300)"
    )
    run(
        "INSERT INTO {schema}.tasks (run_id, task_id, seq, description, status, priority,"
        " attempts) VALUES ('kept', 't1', 0, 'first', 'done', 5, 1)"
    )
    run(
        "INSERT INTO {schema}.attempts (run_id, task_id, attempt, outcome, requests, tokens_in)"
        " VALUES ('kept', 't1', 1, 'done', 1, 300)"
    )
    store = await PostgresStore.open(pg_url, schema=schema)
    try:
        kept = await store.get_run("kept")
        assert (kept.requests, kept.tokens_in, kept.damaged) == (1, 300, None)
        assert [a.outcome for a in await store.get_attempts("kept")] == ["done"]
        assert await store.get_calls("kept") == []
        claimed = await store.claim_run("kept", OWNER, expected_epoch=0, lease_seconds=30)
        reflection = ModelCall(
            role="reflector", iteration=1, outcome="done", messages="[]", requests=1, tokens_in=7
        )
        after = await store.commit_step(
            "kept",
            Step(phase=Phase.EXECUTING, iteration=2, calls=(reflection,)),
            epoch=claimed.epoch,
        )
        assert (after.requests, after.tokens_in) == (2, 307)
        assert await store.get_calls("kept") == [reflection.model_copy(update={"call": 1})]
    finally:
        await store.close()
    fresh = new_schema_name()
    try:
        await (await PostgresStore.open(pg_url, schema=fresh)).close()
        assert info(pg_url, schema) == info(pg_url, fresh) == [("nanoagent", SCHEMA_VERSION)]
        assert shape(pg_url, schema) == shape(pg_url, fresh)  # constraints included
    finally:
        drop_schema(pg_url, fresh)
