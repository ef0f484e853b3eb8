"""The PostgreSQL store: workers and dashboards on several machines sharing one database.

Importing this package does not import psycopg; opening a store does.
"""

from nanoagent_core.postgres.sql import SCHEMA_VERSION
from nanoagent_core.postgres.store import (
    DEFAULT_SCHEMA,
    PostgresStore,
    is_postgres_location,
    split_location,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "SCHEMA_VERSION",
    "PostgresStore",
    "is_postgres_location",
    "split_location",
]
