"""The embedded default store: one SQLite file in WAL mode, shared by many processes."""

from nanoagent_core.sqlite.schema import Synchronous
from nanoagent_core.sqlite.sql import SCHEMA_VERSION
from nanoagent_core.sqlite.store import SQLiteStore

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "Synchronous"]
