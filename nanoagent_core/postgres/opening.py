"""Opening a PostgreSQL store: the driver, the URL, the schema checked (and created or
migrated) on a first connection retried while the server is restarting, then the pool."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nanoagent_core import rows
from nanoagent_core.errors import DatabaseError
from nanoagent_core.postgres import sql
from nanoagent_core.postgres.connection import (
    one_line,
    quiet_driver_logs,
    retryable,
    trusted_sql,
)
from nanoagent_core.postgres.location import require_driver, split_location
from nanoagent_core.postgres.schema import prepare as _prepare
from nanoagent_core.retry import Backoff
from nanoagent_core.sqltext import fill

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

__all__ = ["Opened", "connect"]

logger = logging.getLogger(__name__)

Row = rows.Row


@dataclass(frozen=True)
class Opened:
    """What a store is made of: its pool, how to connect again, where it is (as shown)."""

    pool: AsyncConnectionPool[AsyncConnection[Row]]
    conninfo: str
    kwargs: dict[str, Any]
    shown_at: str
    schema: str


async def connect(
    location: str,
    *,
    schema: str | None,
    read_only: bool,
    create: bool,
    retry_seconds: float,
    connect_timeout: float,
    pool_size: int,
    idle_in_transaction_timeout: float,
) -> Opened:
    """See :meth:`PostgresStore.open`."""
    require_driver()
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    quiet_driver_logs()
    conninfo, url_schema, shown = split_location(location)
    schema = schema or url_schema
    if not sql.SCHEMA_NAME.fullmatch(schema):
        raise DatabaseError(f"bad schema name {schema[:80]!r}")
    shown_at = shown if schema == url_schema else f"{shown} (schema {schema})"
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": max(2, round(connect_timeout)),
    }
    if "application_name" not in conninfo:
        kwargs["application_name"] = f"nanoagent/{os.getpid()}"  # for pg_stat_activity
    store_sql = functools.partial(sql.render, schema=schema)
    # A server that cannot be reached is reported at once; one that was reached but whose
    # session broke midway (terminated, restarting) is tried again within retry_seconds,
    # as every operation is (the schema work is one transaction: nothing half-done).
    backoff = Backoff(0.05, 1.0, within=retry_seconds)
    reached = False
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, **kwargs)
        except psycopg.Error as exc:
            failure = f"cannot connect: {one_line(exc)}"
            if not reached:
                raise DatabaseError(f"{shown_at}: {failure}") from None
        else:
            reached = True
            try:
                await _prepare(conn, store_sql, shown_at, schema, read_only, create)
                break
            except psycopg.Error as exc:
                failure = one_line(exc)
                if not retryable(exc, conn):
                    raise DatabaseError(f"{shown_at}: {failure}") from None
            finally:
                await conn.close()
        if not await backoff.wait():
            raise DatabaseError(f"{shown_at}: {failure}")
        logger.info("%s: opening: %s; trying again", shown_at, failure)

    configure_sql = fill(
        sql.CONFIGURE_SESSION, idle_ms=str(max(0, round(idle_in_transaction_timeout * 1000)))
    )

    async def configure(new: AsyncConnection[Row]) -> None:
        await new.execute(trusted_sql(configure_sql))

    pool: AsyncConnectionPool[AsyncConnection[Row]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max(1, pool_size),
        open=False,
        kwargs=kwargs,
        configure=configure,
        timeout=connect_timeout,
        reconnect_timeout=2.0,  # then a new attempt at the next demand: no long back-off
        name=f"nanoagent:{schema}",
    )
    await pool.open(wait=False)
    return Opened(pool, conninfo, kwargs, shown_at, schema)
