"""Opening a SQLite database: what the file is, checked before anything is written to it;
WAL and pragmas; the schema created or migrated. Runs on the connection's own thread.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from nanoagent_core import store_rules as rules
from nanoagent_core.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseNotFoundError,
    NotANanoagentDatabaseError,
    SchemaTooNewError,
)
from nanoagent_core.retry import Backoff
from nanoagent_core.sqlite import sql, sql_prune
from nanoagent_core.sqlite.thread import NOT_HERE
from nanoagent_core.sqltext import fill

__all__ = [
    "Synchronous",
    "create_private_file",
    "damaged",
    "in_transaction",
    "prepare",
    "translate",
    "wait_only_on_thread",
    "write_now",
]

logger = logging.getLogger(__name__)

Synchronous = Literal["NORMAL", "FULL"]
T = TypeVar("T")


def in_transaction(conn: sqlite3.Connection, begin: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(conn, *args)`` between ``begin`` and COMMIT; rolled back on any exception."""
    conn.execute(begin)
    try:
        out = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return out


def write_now(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T | Any:
    """``fn(conn, *args)`` in a ``BEGIN IMMEDIATE`` transaction taken without waiting, on a
    connection whose busy timeout is 0 (see wait_only_on_thread): when another connection
    holds the write lock, NOT_HERE (nothing done) instead of waiting for it in the busy
    handler (this runs on an event loop's thread, which must not sleep there; the caller
    hands the write to the connection's thread, which may). Once the lock is held, nothing
    in the transaction waits for another connection (WAL: the commit appends to the log, and
    the automatic checkpoint after it is a passive one)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return NOT_HERE
        raise
    try:
        out = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return out


def wait_only_on_thread(conn: sqlite3.Connection) -> str:
    """Set the connection's busy timeout to 0 (for write_now) and return the statement that
    sets it back to what it was, for the calls on the connection's thread (which may wait)."""
    (ms,) = conn.execute(sql.BUSY_TIMEOUT).fetchone()
    conn.execute(sql.SET_BUSY_TIMEOUT_0)
    return fill(sql.SET_BUSY_TIMEOUT, ms=str(int(ms)))


def _fold(value: str | float | bytes | None) -> str | float | bytes | None:
    return rules.fold(value) if isinstance(value, str) else value


def prepare(
    conn: sqlite3.Connection,
    where: str,
    read_only: bool,
    synchronous: Synchronous,
    busy_timeout: float,
    extra_pragmas: dict[str, int | str],
) -> None:
    """Check what the file is before writing anything to it, then set it up and migrate."""
    conn.create_function(rules.FOLD_FUNCTION, 1, _fold, deterministic=True)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
    try:
        app_id, version, objects = conn.execute(sql.READ_HEADER).fetchone()
    except UnicodeDecodeError as exc:
        # SQLite's message quotes damaged schema text that is not UTF-8: its words are lost
        raise NotANanoagentDatabaseError(f"{where}: damaged database ({exc.reason})") from None
    except sqlite3.DatabaseError as exc:
        if damaged(exc):
            raise NotANanoagentDatabaseError(
                f"{where}: not a nanoagent database ({_line(exc)})"
            ) from None
        # Not the file's fault (locked, or a WAL file whose -shm cannot be created in a
        # read-only directory): say what SQLite said, not that the file is foreign.
        hint = ""
        if "readonly" in str(exc) or "unable to open" in str(exc):
            hint = f"; is the directory writable? SQLite needs {where}-shm beside the file"
        raise DatabaseError(f"{where}: cannot read the database ({_line(exc)}{hint})") from None
    if app_id != sql.APPLICATION_ID and (objects or app_id or version):
        raise NotANanoagentDatabaseError(
            f"{where}: a SQLite database of another application, not a nanoagent database"
        )
    if version > sql.SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{where}: schema version {version} is newer than this nanoagent understands"
            f" ({sql.SCHEMA_VERSION}); upgrade nanoagent to open it"
        )
    conn.execute("PRAGMA foreign_keys = ON")
    for name, value in extra_pragmas.items():
        if not name.isidentifier():
            raise DatabaseError(f"bad pragma name {name!r}")
        conn.execute(f"PRAGMA {name} = {int(value) if isinstance(value, int) else repr(value)}")
    if read_only:
        if version == 0 and not objects:
            # An empty file (being created by another process right now): nothing here yet.
            raise DatabaseNotFoundError(f"{where}: no nanoagent database here yet")
        if version < sql.SCHEMA_VERSION:
            raise DatabaseError(
                f"{where}: schema version {version} is older than {sql.SCHEMA_VERSION};"
                " open it once read-write to migrate it"
            )
        _integrity_probe(conn, where)
        return
    if objects:
        _quick_check(conn, where)  # before this connection writes anything (WAL switch included)
    else:
        conn.execute(sql_prune.SET_INCREMENTAL)  # a new file: only before its first table
    _enter_wal(conn, where, busy_timeout)
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    if version < sql.SCHEMA_VERSION:
        # Foreign keys off while migrating (a no-op inside a transaction, so set around it):
        # a migration that rebuilds a parent table drops it, which would otherwise delete
        # every child row by cascade. _migrate checks the keys before it commits.
        conn.execute(sql.FOREIGN_KEYS_OFF)
        try:
            in_transaction(conn, "BEGIN IMMEDIATE", _migrate, where)
        finally:
            conn.execute(sql.FOREIGN_KEYS_ON)
    _integrity_probe(conn, where)


def _line(exc: BaseException) -> str:
    """SQLite's message on one line (a malformed schema entry is quoted with its newlines)."""
    return " ".join(str(exc).split())


def _enter_wal(conn: sqlite3.Connection, where: str, busy_timeout: float) -> None:
    """Switch to WAL (a no-op once the file is WAL). Leaving rollback-journal mode needs an
    exclusive lock for which SQLite does not always call the busy handler (several processes
    opening one new file at once got "database is locked" at once), so retry until the busy
    timeout."""
    backoff = Backoff(0.005, 0.005, within=busy_timeout)
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or not backoff.wait_sync():
                raise
            if backoff.attempts == 1:
                logger.info("%s: locked while entering WAL mode; retrying", where)


def _migrate(conn: sqlite3.Connection, where: str) -> None:
    # Re-read inside the write lock: another process may have migrated meanwhile.
    app_id, version, objects = conn.execute(sql.READ_HEADER).fetchone()
    if app_id != sql.APPLICATION_ID and objects:
        raise NotANanoagentDatabaseError(f"{where}: not a nanoagent database")
    if version > sql.SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{where}: schema version {version} is newer than this nanoagent understands"
            f" ({sql.SCHEMA_VERSION}); upgrade nanoagent to open it"
        )
    for target in range(version, sql.SCHEMA_VERSION):
        for statement in sql.MIGRATIONS[target]:
            conn.execute(statement)
        conn.execute(fill(sql.SET_VERSION, version=str(target + 1)))
    broken = conn.execute(sql.FOREIGN_KEY_CHECK).fetchone()
    if broken is not None:
        raise NotANanoagentDatabaseError(
            f"{where}: damaged database (a {broken[0]} row refers to a missing {broken[2]} row);"
            " not migrated, nothing was written"
        )
    conn.execute(sql.SET_APPLICATION_ID)


def _integrity_probe(conn: sqlite3.Connection, where: str) -> None:
    """Touch every table once so a damaged file is refused at open, not mid-run."""
    try:
        for table in ("runs", "tasks", "results", "events", "attempts", "model_calls"):
            conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NotANanoagentDatabaseError(f"{where}: damaged database ({_line(exc)})") from None


def _quick_check(conn: sqlite3.Connection, where: str) -> None:
    """Refuse a corrupt file before writing to it: ``PRAGMA quick_check`` reads every page of
    the file (every b-tree, not the indexes' agreement with their tables), so its cost grows
    with the file (bench/bigdb.py measures it). Only a writer pays it; viewers keep the cheap
    probe, since they never change the file."""
    try:
        first = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        if damaged(exc):
            raise NotANanoagentDatabaseError(f"{where}: damaged database ({_line(exc)})") from None
        raise
    if first is None or first[0] != "ok":
        detail = " ".join(str(first[0] if first else "no answer").split())[:200]
        raise NotANanoagentDatabaseError(
            f"{where}: damaged database (quick_check: {detail}); nothing was written"
        )


def create_private_file(path: Path) -> None:
    """Create an empty database file readable by its owner only (SQLite's -wal and -shm files
    take the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"{path}: cannot create: {exc.strerror}") from None
    os.close(fd)


def damaged(exc: sqlite3.Error) -> bool:
    message = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in message or "not a database" in message
    )


def translate(where: str, exc: sqlite3.Error) -> DatabaseError:
    message = " ".join(str(exc).split()) or type(exc).__name__
    if damaged(exc):
        return NotANanoagentDatabaseError(f"{where}: damaged database ({message})")
    if isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        or "database is locked" in message
    ):
        return DatabaseBusyError(f"{where}: {message}")
    return DatabaseError(f"{where}: {message}")
