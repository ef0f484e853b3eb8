"""Contract (every store): what a dashboard reads through the Viewer Protocol.

* ``last_event_id()`` is the id of the newest committed event (0 when there is none): reading
  ``read_events(after_id=last_event_id())`` finds nothing, and the next commit's events are
  exactly what comes after it. One query (SQLite and PostgreSQL: a probe of the end of the
  primary key, not a scan), where the dashboard used to binary-search ``read_events``.
* ``pushes_changes`` says whether ``change_token`` is pushed (no query per call): PostgreSQL
  (LISTEN/NOTIFY) and the memory store yes, SQLite (``PRAGMA data_version``) no.
* ``open_viewer(location)`` opens a read-only Viewer that creates nothing, refuses writes and
  sees what other connections commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import LiteralString, cast

import psycopg
import pytest
from pgkit import drop_schema, new_schema_name, sql_rows, usable_server, with_schema
from storekit import FakeClock, new_run, step_for

from nanoagent_core.errors import DatabaseError, DatabaseNotFoundError
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import Owner
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.postgres import sql as pg_sql
from nanoagent_core.protocols import NewEvent, Store, Viewer
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.sqlite import sql as sqlite_sql
from nanoagent_core.stores import open_viewer

OWNER = Owner(host="test-host", pid=4242, pid_started=17.0)


async def _newest(store: Viewer) -> int:
    events = await store.read_events(limit=1_000_000)
    return events[-1].id if events else 0


# -- every store -------------------------------------------------------------------------------


async def test_last_event_id_is_the_newest_committed_event(store: Store) -> None:
    assert await store.last_event_id() == 0
    await store.create_run(new_run("run-a"))
    await store.create_run(new_run("run-b"))
    assert await store.last_event_id() == await _newest(store) == 2
    run = await store.claim_run("run-a", OWNER, expected_epoch=0, lease_seconds=30)
    for i in range(3):
        run = await store.commit_step("run-a", step_for(i), epoch=run.epoch)
    await store.append_event("run-b", NewEvent(kind="note", data={"text": "hello"}))
    last = await store.last_event_id()
    assert last == await _newest(store)
    assert (await store.read_events(limit=1))[0].id == 1
    assert await store.read_events(after_id=last) == []
    # the next commit's events are exactly those after it, whichever run they belong to
    await store.append_event("run-a", NewEvent(kind="note", data={"text": "later"}))
    (after,) = await store.read_events(after_id=last)
    assert (after.id, after.run_id, after.data) == (last + 1, "run-a", {"text": "later"})
    assert await store.last_event_id() == last + 1


async def test_pushes_changes_says_whether_change_token_costs_a_query(store: Store) -> None:
    viewer: Viewer = store  # every store is a Viewer (checked by the type checker too)
    expected = {MemoryStore: True, SQLiteStore: False, PostgresStore: True}[type(store)]
    assert viewer.pushes_changes is expected


async def test_a_closed_store_refuses_last_event_id(store: Store) -> None:
    await store.close()
    with pytest.raises(DatabaseError, match="closed"):
        await store.last_event_id()


# -- one probe, not a scan -----------------------------------------------------------------------


def test_sqlite_last_event_id_is_one_probe_of_the_primary_key(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "plan.db")
    try:
        conn.executescript(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT, ts TEXT, kind TEXT,"
            " data TEXT);"
        )
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sqlite_sql.LAST_EVENT_ID)]
    finally:
        conn.close()
    assert plan == ["SEARCH events"], plan  # a full table walk says "SCAN events"


async def test_postgres_last_event_id_reads_the_index_backwards() -> None:
    url = usable_server()
    schema = new_schema_name()
    store = await PostgresStore.open(with_schema(url, schema))
    try:
        await store.close()
        query = pg_sql.render(pg_sql.LAST_EVENT_ID, schema)
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            # without the min/max rewrite, even a forced index path reads every entry forwards
            conn.execute("SET enable_seqscan = off")
            rows = conn.execute(cast(LiteralString, f"EXPLAIN {query}")).fetchall()
        plan = "\n".join(str(row[0]) for row in rows)
    finally:
        drop_schema(url, schema)
    assert "Limit" in plan, plan
    assert "Index Only Scan Backward" in plan, plan


# -- open_viewer -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def writer(
    request: pytest.FixtureRequest, clock: FakeClock, db_path: Path
) -> AsyncIterator[tuple[Store, str]]:
    """A read-write store and the location string a dashboard is given for it."""
    if request.param == "sqlite":
        opened = await SQLiteStore.open(db_path, clock=clock)
        try:
            yield opened, str(db_path)
        finally:
            await opened.close()
        return
    url = usable_server()
    location = with_schema(url, new_schema_name())
    pg = await PostgresStore.open(location, clock=clock)
    try:
        yield pg, location
    finally:
        await pg.close()
        drop_schema(url, pg.schema)


async def _token_moves(viewer: Viewer, before: int) -> int:
    """The viewer's change token once it differs from ``before`` (pushed changes arrive a
    moment after the commit): waits on the condition, generously."""
    deadline = time.monotonic() + 30
    while (token := await viewer.change_token()) == before:
        if time.monotonic() > deadline:
            pytest.fail("the change token did not move after another connection committed")
        await asyncio.sleep(0.01)
    return token


async def test_open_viewer_sees_another_connections_commits(writer: tuple[Store, str]) -> None:
    store, location = writer
    await store.create_run(new_run("run-1"))
    viewer = await open_viewer(location)
    try:
        assert viewer.location == store.location
        last = await viewer.last_event_id()
        assert last == await store.last_event_id() == 1
        token = await viewer.change_token()
        await store.append_event("run-1", NewEvent(kind="note", data={"n": 1}))
        await store.append_event("run-1", NewEvent(kind="note", data={"n": 2}))
        await _token_moves(viewer, token)
        assert await viewer.last_event_id() == last + 2
        news = await viewer.read_events(after_id=last)
        assert [(e.id, e.data) for e in news] == [(last + 1, {"n": 1}), (last + 2, {"n": 2})]
        assert [r.run_id for r in await viewer.get_runs(["run-1", "nope"])] == ["run-1"]
        assert await viewer.count_runs() == await store.count_runs()
    finally:
        await viewer.close()


async def test_open_viewer_is_read_only(writer: tuple[Store, str]) -> None:
    store, location = writer
    await store.create_run(new_run("run-1"))
    viewer = await open_viewer(location)
    try:
        # a Viewer has no writes; the object behind it refuses them too
        with pytest.raises(DatabaseError, match="read-only"):
            await cast(Store, viewer).create_run(new_run("run-2"))
        with pytest.raises(DatabaseError, match="read-only"):
            await cast(Store, viewer).request_abort("run-1")
    finally:
        await viewer.close()
    assert [r.run_id for r in await store.list_runs()] == ["run-1"]


async def test_open_viewer_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    with pytest.raises(DatabaseNotFoundError):
        await open_viewer(str(missing))
    assert not missing.exists()


async def test_open_viewer_creates_no_postgres_schema() -> None:
    url = usable_server()
    schema = new_schema_name()
    try:
        with pytest.raises(DatabaseNotFoundError):
            await open_viewer(with_schema(url, schema))
        found = sql_rows(
            url, f"SELECT 1 FROM information_schema.schemata WHERE schema_name = '{schema}'"
        )
        assert found == []
    finally:
        drop_schema(url, schema)
