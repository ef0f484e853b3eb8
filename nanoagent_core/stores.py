"""Opening a store from a location string (what ``--db`` and ``NANOAGENT_DB`` hold)."""

from __future__ import annotations

from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.paths import MEMORY
from nanoagent_core.postgres import PostgresStore, is_postgres_location
from nanoagent_core.protocols import Viewer
from nanoagent_core.sqlite import SQLiteStore, Synchronous

__all__ = ["AnyStore", "open_store", "open_viewer"]

AnyStore = SQLiteStore | MemoryStore | PostgresStore


async def open_store(
    location: str,
    *,
    read_only: bool = False,
    create: bool = True,
    synchronous: Synchronous = "NORMAL",
) -> AnyStore:
    """A SQLite file path, ``:memory:`` (ephemeral, this process only), or a
    ``postgresql://`` URL (``?schema=NAME`` picks the schema; default ``nanoagent``).

    ``synchronous`` is SQLite's: a PostgreSQL server's durability is its own setting.
    Every store is an async context manager: ``async with await open_store(...) as store:``
    closes it."""
    if location == MEMORY:
        return MemoryStore()
    if is_postgres_location(location):
        return await PostgresStore.open(location, read_only=read_only, create=create)
    return await SQLiteStore.open(
        location, read_only=read_only, create=create, synchronous=synchronous
    )


async def open_viewer(location: str, busy_timeout: float = 0.2) -> Viewer:
    """A read-only store for a dashboard, that fails fast: a locked SQLite file (short busy
    timeout) or an unreachable PostgreSQL server (short retry window) makes a read raise
    DatabaseError, for the caller to retry, instead of blocking. Never creates or migrates
    anything (DatabaseNotFoundError when there is no database yet). ``:memory:`` is a new,
    empty store of this process only."""
    if location == MEMORY:
        return MemoryStore()
    if is_postgres_location(location):
        return await PostgresStore.open(
            location, read_only=True, create=False, retry_seconds=busy_timeout
        )
    return await SQLiteStore.open(location, read_only=True, create=False, busy_timeout=busy_timeout)
