"""Fixtures of the PostgreSQL tests.

They need a server: ``NANOAGENT_TEST_POSTGRES`` names it (CI sets it, and then a server that
does not answer FAILS every test). Unset, 127.0.0.1:5432 is tried once and, if nothing
answers, every test here is skipped with the reason. Each test gets a schema of its own,
dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from multiprocessing.context import ForkServerContext

import prockit
import pytest
from pgkit import drop_schema, new_schema_name, usable_server, with_schema

from nanoagent_core.postgres import PostgresStore


@pytest.fixture(scope="module")
def forking() -> Iterator[ForkServerContext]:
    """Child processes forked from one server of this module's that has imported the store
    code once (prockit.forkserver): real processes, each with its own connections."""
    with prockit.forkserver() as ctx:
        yield ctx


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The server's URL (without a schema)."""
    return usable_server()


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name for this test; the schema is dropped afterwards."""
    name = new_schema_name()
    try:
        yield name
    finally:
        drop_schema(pg_url, name)


@pytest.fixture
def location(pg_url: str, schema: str) -> str:
    """The URL a worker process opens: the server plus ``?schema=`` of this test."""
    return with_schema(pg_url, schema)


@pytest.fixture
async def store(location: str) -> AsyncIterator[PostgresStore]:
    """A store on this test's schema, judging time by the database's clock."""
    opened = await PostgresStore.open(location, retry_seconds=5.0)
    try:
        yield opened
    finally:
        await opened.close()
