"""The schema of a PostgreSQL store: what a schema of that name is, checked before anything
is written; created or migrated under an advisory lock, in one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from nanoagent_core import rows
from nanoagent_core.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    NotANanoagentDatabaseError,
    SchemaTooNewError,
)
from nanoagent_core.postgres import sql
from nanoagent_core.postgres.connection import trusted_sql

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = ["inspect", "prepare"]

Row = rows.Row


async def prepare(
    conn: AsyncConnection[Row],
    render: Callable[[str], str],
    where: str,
    schema: str,
    read_only: bool,
    create: bool,
) -> None:
    """Check what the schema is before writing anything, then create or migrate it."""
    version = await inspect(conn, render, where, schema)
    if version == sql.SCHEMA_VERSION:
        return
    if version is None and (read_only or not create):
        raise DatabaseNotFoundError(f"{where}: no nanoagent schema {schema!r} in this database")
    if read_only:
        raise DatabaseError(
            f"{where}: schema version {version} is older than {sql.SCHEMA_VERSION};"
            " open it once read-write to migrate it"
        )
    await conn.execute("BEGIN")
    try:
        await conn.execute(sql.MIGRATION_LOCK, (schema,))
        # Re-read under the lock: another process may have migrated meanwhile.
        version = await inspect(conn, render, where, schema)
        if version is None:
            for statement in sql.BOOTSTRAP:
                await conn.execute(trusted_sql(render(statement)))
            version = 0
        for target in range(version, sql.SCHEMA_VERSION):
            for statement in sql.MIGRATIONS[target]:
                await conn.execute(trusted_sql(render(statement)))
            await conn.execute(trusted_sql(render(sql.SET_VERSION)), {"version": target + 1})
        await conn.execute("COMMIT")
    except BaseException:
        if not conn.closed:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise


async def inspect(
    conn: AsyncConnection[Row], render: Callable[[str], str], where: str, schema: str
) -> int | None:
    """The schema's version, None if there is no schema (or an empty one) of that name.
    Refuses a schema of another application and one newer than this code."""
    cur = await conn.execute(sql.INSPECT, {"schema": schema, "info": f'"{schema}".schema_info'})
    row = await cur.fetchone()
    assert row is not None
    schema_exists, info_exists, tables = row
    if not info_exists:
        if schema_exists and tables:
            raise NotANanoagentDatabaseError(
                f"{where}: schema {schema!r} holds tables that are not nanoagent's;"
                " choose another schema with ?schema=NAME"
            )
        return None
    cur = await conn.execute(trusted_sql(render(sql.READ_INFO)))
    info = await cur.fetchone()
    if info is None or info[0] != sql.APPLICATION:
        raise NotANanoagentDatabaseError(f"{where}: schema {schema!r} is not nanoagent's")
    version = int(info[1])
    if version > sql.SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{where}: schema version {version} is newer than this nanoagent understands"
            f" ({sql.SCHEMA_VERSION}); upgrade nanoagent to open it"
        )
    return version
