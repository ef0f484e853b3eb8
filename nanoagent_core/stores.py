"""Opening a store from a location string (what ``--db`` and ``NANOAGENT_DB`` hold)."""

from __future__ import annotations

from nanoagent_core.errors import DatabaseError
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.paths import MEMORY
from nanoagent_core.sqlite import SQLiteStore, Synchronous

__all__ = ["AnyStore", "open_store"]

AnyStore = SQLiteStore | MemoryStore


async def open_store(
    location: str,
    *,
    read_only: bool = False,
    create: bool = True,
    synchronous: Synchronous = "NORMAL",
) -> AnyStore:
    """A SQLite file path or ``:memory:`` (ephemeral, this process only)."""
    if location == MEMORY:
        return MemoryStore()
    if location.startswith(("postgres://", "postgresql://")):
        raise DatabaseError(f"{location}: PostgreSQL is not supported yet; use a SQLite file path")
    return await SQLiteStore.open(
        location, read_only=read_only, create=create, synchronous=synchronous
    )
