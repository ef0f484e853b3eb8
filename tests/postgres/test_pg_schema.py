"""Opening: the schema, its numbered migrations, refusals, and ``open_store`` wiring."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest
from pgkit import drop_schema, new_run, new_schema_name, sql_rows, with_schema
from prockit import open_worker
from storekit import assert_open_refused

from nanoagent_core.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    NotANanoagentDatabaseError,
    SchemaTooNewError,
)
from nanoagent_core.postgres import SCHEMA_VERSION, PostgresStore
from nanoagent_core.stores import open_store


def tables(pg_url: str, schema: str) -> list[str]:
    rows = sql_rows(
        pg_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
        " ORDER BY table_name",
        (schema,),
    )
    return [row[0] for row in rows]


def info(pg_url: str, schema: str) -> list[tuple[Any, ...]]:
    return sql_rows(pg_url, f'SELECT application, version FROM "{schema}".schema_info')


def state(pg_url: str, schema: str) -> list[tuple[Any, ...]]:
    """Everything in the schema that a write could change."""
    rows = sql_rows(
        pg_url,
        "SELECT c.relname, c.relkind, c.reltuples FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1",
        (schema,),
    )
    if "schema_info" in tables(pg_url, schema):
        rows += info(pg_url, schema)
    if "counters" in tables(pg_url, schema):
        rows += sql_rows(pg_url, f'SELECT * FROM "{schema}".counters')
    return rows


async def test_fresh_schema_is_created_at_the_current_version(pg_url: str, schema: str) -> None:
    store = await PostgresStore.open(pg_url, schema=schema)
    await store.close()
    assert tables(pg_url, schema) == [
        "approvals", "attempts", "counters", "events", "model_calls", "results", "runs",
        "schema_info", "tasks",
    ]  # fmt: skip
    assert info(pg_url, schema) == [("nanoagent", SCHEMA_VERSION)]


async def test_reopening_keeps_data_and_migrates_nothing(
    location: str, pg_url: str, schema: str
) -> None:
    store = await PostgresStore.open(location)
    await store.create_run(new_run("kept"))
    await store.close()
    before = state(pg_url, schema)
    store = await PostgresStore.open(location)
    try:
        assert (await store.get_run("kept")).run_id == "kept"
    finally:
        await store.close()
    assert state(pg_url, schema) == before


async def test_old_schema_is_migrated_and_read_only_refuses_to(pg_url: str, schema: str) -> None:
    """A schema at version 0 (the version table alone), as a nanoagent before migration 1
    would have left it: a viewer refuses it; a read-write open migrates it."""
    sql_rows(pg_url, f'CREATE SCHEMA "{schema}"')
    sql_rows(
        pg_url,
        f'CREATE TABLE "{schema}".schema_info (singleton boolean PRIMARY KEY DEFAULT true'
        " CHECK (singleton), application text NOT NULL, version integer NOT NULL)",
    )
    sql_rows(pg_url, f"INSERT INTO \"{schema}\".schema_info VALUES (true, 'nanoagent', 0)")
    await assert_open_refused(
        PostgresStore.open(pg_url, schema=schema, read_only=True), DatabaseError, "older"
    )
    assert tables(pg_url, schema) == ["schema_info"]
    store = await PostgresStore.open(pg_url, schema=schema)
    try:
        await store.create_run(new_run("r"))
    finally:
        await store.close()
    assert info(pg_url, schema) == [("nanoagent", SCHEMA_VERSION)]


@pytest.mark.parametrize("read_only", [False, True])
async def test_newer_schema_is_refused_and_nothing_written(
    pg_url: str, schema: str, read_only: bool
) -> None:
    store = await PostgresStore.open(pg_url, schema=schema)
    await store.create_run(new_run("r"))
    await store.close()
    sql_rows(pg_url, f'UPDATE "{schema}".schema_info SET version = {SCHEMA_VERSION + 1}')
    before = state(pg_url, schema)
    raised = await assert_open_refused(
        PostgresStore.open(pg_url, schema=schema, read_only=read_only), SchemaTooNewError, "newer"
    )
    assert "\n" not in str(raised)
    assert state(pg_url, schema) == before


async def test_schema_of_another_application_is_refused_untouched(pg_url: str, schema: str) -> None:
    sql_rows(pg_url, f'CREATE SCHEMA "{schema}"')
    sql_rows(pg_url, f'CREATE TABLE "{schema}".runs (id int)')
    await assert_open_refused(
        PostgresStore.open(pg_url, schema=schema), NotANanoagentDatabaseError, "not nanoagent"
    )
    assert tables(pg_url, schema) == ["runs"]


async def test_a_database_with_other_tables_is_fine(pg_url: str, schema: str) -> None:
    """Another application's tables of the same names, in its own schema, are never read
    or written: the database is shared."""
    foreign = new_schema_name()
    try:
        sql_rows(pg_url, f'CREATE SCHEMA "{foreign}"')
        for table in ("runs", "events", "tasks", "schema_info", "counters"):
            sql_rows(pg_url, f'CREATE TABLE "{foreign}".{table} (x text)')
        sql_rows(pg_url, f"INSERT INTO \"{foreign}\".runs VALUES ('theirs')")
        store = await PostgresStore.open(pg_url, schema=schema)
        try:
            await store.create_run(new_run("ours"))
            assert [r.run_id for r in await store.list_runs()] == ["ours"]
        finally:
            await store.close()
        assert sql_rows(pg_url, f'SELECT x FROM "{foreign}".runs') == [("theirs",)]
    finally:
        drop_schema(pg_url, foreign)


@pytest.mark.parametrize("mode", ["read_only", "no_create"])
async def test_missing_schema_without_create_is_not_found(
    pg_url: str, schema: str, mode: str
) -> None:
    await assert_open_refused(
        PostgresStore.open(
            pg_url, schema=schema, read_only=mode == "read_only", create=mode != "no_create"
        ),
        DatabaseNotFoundError,
        schema,
    )
    assert sql_rows(pg_url, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:1/test",
        "postgresql://nobody-here@127.0.0.1:5432/test",
        "postgresql://postgres@127.0.0.1:5432/no_such_database_here",
    ],
    ids=["no-server", "no-user", "no-database"],
)
async def test_unreachable_database_is_one_clear_line(url: str, pg_url: str) -> None:
    if "127.0.0.1:5432" not in pg_url and ":1/" not in url:
        pytest.skip("needs the server at 127.0.0.1:5432")
    raised = await assert_open_refused(
        PostgresStore.open(url, connect_timeout=2), DatabaseError, "cannot connect"
    )
    message = str(raised)
    assert "\n" not in message
    assert "Traceback" not in message


async def test_open_store_takes_postgres_urls(location: str) -> None:
    for url in (location, location.replace("postgresql://", "postgres://", 1)):
        store = await open_store(url)
        try:
            assert isinstance(store, PostgresStore)
            assert store.location == url
            await store.count_runs()
        finally:
            await store.close()


def test_concurrent_first_open_from_several_processes(pg_url: str, schema: str) -> None:
    """Six processes open the same fresh schema at once: the advisory lock serializes the
    migration; every one opens it and writes."""
    location = with_schema(pg_url, schema)
    ctx = multiprocessing.get_context("spawn")
    n = 6
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=open_worker, args=([location], f"opener-{i}", barrier, out))
        for i in range(n)
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = [out.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    errors = [detail for kind, _, detail in outcomes if kind != "ok"]
    assert errors == []
    assert info(pg_url, schema) == [("nanoagent", SCHEMA_VERSION)]
    rows = sql_rows(pg_url, f'SELECT run_id FROM "{schema}".runs ORDER BY run_id')
    assert [r[0] for r in rows] == [f"opener-{i}" for i in range(n)]
    ids = sql_rows(pg_url, f'SELECT id FROM "{schema}".events ORDER BY id')
    assert [r[0] for r in ids] == list(range(1, n + 1))


def shape(pg_url: str, schema: str) -> list[tuple[Any, ...]]:
    """Columns, indexes and constraints of a schema, with its name taken out."""
    columns = sql_rows(
        pg_url,
        "SELECT table_name, column_name, data_type, column_default, is_nullable"
        " FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
        (schema,),
    )
    indexes = sql_rows(
        pg_url,
        "SELECT tablename, indexname, replace(indexdef, %s, 'S') FROM pg_indexes"
        " WHERE schemaname = %s ORDER BY 1, 2",
        (f"{schema}.", schema),
    )
    constraints = sql_rows(
        pg_url,
        "SELECT c.conname, replace(pg_get_constraintdef(c.oid), %s, 'S') FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s ORDER BY 1",
        (f"{schema}.", schema),
    )
    return [*columns, *indexes, *constraints]


async def test_migration_chain_matches_fresh_schema_and_keeps_data(
    pg_url: str, schema: str
) -> None:
    """A schema at version 1 with a run in it migrates to the current version with its data
    intact, and ends with exactly the schema a fresh one gets."""
    from nanoagent_core.postgres import sql as pg_sql

    def run(statement: str) -> None:
        sql_rows(pg_url, pg_sql.render(statement, schema))

    for statement in (*pg_sql.BOOTSTRAP, *pg_sql.MIGRATIONS[0]):
        run(statement)
    run("UPDATE {schema}.schema_info SET version = 1")
    run(
        "INSERT INTO {schema}.runs (run_id, goal, max_iterations, agent, phase, status,"
        " created_at, updated_at) VALUES ('kept', 'a goal', 5, 'demo', 'planning',"
        " 'interrupted', now(), now())"
    )
    store = await PostgresStore.open(pg_url, schema=schema)
    try:
        kept = await store.get_run("kept")
    finally:
        await store.close()
    assert (kept.goal, kept.status.value) == ("a goal", "interrupted")
    fresh = new_schema_name()
    try:
        await (await PostgresStore.open(pg_url, schema=fresh)).close()
        assert info(pg_url, schema) == info(pg_url, fresh) == [("nanoagent", SCHEMA_VERSION)]
        assert shape(pg_url, schema) == shape(pg_url, fresh)
    finally:
        drop_schema(pg_url, fresh)
