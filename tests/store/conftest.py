"""Fixtures of the store tests: a fake clock, and a store of each kind on it."""

from __future__ import annotations

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


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, clock: FakeClock, db_path: Path
) -> AsyncIterator[Store]:
    """The contract suite runs once against each store."""
    if request.param == "memory":
        yield MemoryStore(clock=clock)
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
