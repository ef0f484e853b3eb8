"""Fixtures of the store tests: a fake clock, and a store of each kind on it."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from storekit import FakeClock

from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.protocols import Store
from nanoagent_core.sqlite import SQLiteStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database path per test (the file does not exist yet)."""
    return tmp_path / "nanoagent.db"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, clock: FakeClock, db_path: Path
) -> AsyncIterator[Store]:
    """The contract suite runs once against each store (PostgreSQL: a real server, in a
    schema of its own; skipped with the reason when no server answers, unless
    NANOAGENT_TEST_POSTGRES names one, as CI does)."""
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    if request.param == "postgres":
        async for opened in _postgres_store(clock):
            yield opened
        return
    opened = await SQLiteStore.open(db_path, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def sqlite_store(clock: FakeClock, db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(db_path, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


_PG_ENV = "NANOAGENT_TEST_POSTGRES"
_PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def _postgres_url() -> tuple[str, str | None]:
    """The server's URL, and why it cannot be used (None when it can)."""
    import psycopg

    url = os.environ.get(_PG_ENV, "").strip() or _PG_DEFAULT
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return url, " ".join(str(exc).split())[:200]
    return url, None


async def _postgres_store(clock: FakeClock) -> AsyncIterator[Store]:
    import psycopg
    import psycopg.sql

    from nanoagent_core.postgres import PostgresStore

    url, problem = _postgres_url()
    if problem is not None:
        if os.environ.get(_PG_ENV, "").strip():
            pytest.fail(f"{_PG_ENV}={url} is set but the server does not answer: {problem}")
        pytest.skip(f"no PostgreSQL server at {url} ({problem}); set {_PG_ENV} to run")
    schema = f"contract_{uuid.uuid4().hex[:12]}"
    opened = await PostgresStore.open(url, schema=schema, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    psycopg.sql.Identifier(schema)
                )
            )
