"""Fixtures of the store tests: a fake clock, and a store of each kind on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from multiprocessing.context import ForkServerContext
from pathlib import Path

import prockit
import pytest
from pgkit import drop_schema, new_schema_name, usable_server
from storekit import FakeClock

from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.protocols import Store
from nanoagent_core.sqlite import SQLiteStore


@pytest.fixture(scope="module")
def forking() -> Iterator[ForkServerContext]:
    """Child processes forked from one server of this module's that has imported the store
    code once (prockit.forkserver): real processes, each with its own connections."""
    with prockit.forkserver() as ctx:
        yield ctx


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


async def _postgres_store(clock: FakeClock) -> AsyncIterator[Store]:
    from nanoagent_core.postgres import PostgresStore

    url = usable_server()
    schema = new_schema_name()
    opened = await PostgresStore.open(url, schema=schema, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
        drop_schema(url, schema)
