"""SQLite open paths no test executed (issue 15, item 8): a file that cannot be created, and
the migration's re-checks inside the write lock (another process changed the header between
the first read and the lock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storekit import assert_open_refused

from nanoagent_core.errors import DatabaseError, NotANanoagentDatabaseError, SchemaTooNewError
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.sqlite import schema as sqlite_store
from nanoagent_core.sqlite import sql as schema


async def test_a_file_that_cannot_be_created_is_one_line() -> None:
    path = Path("/proc/nanoagent-test.db")  # a directory nobody, root included, creates in
    raised = await assert_open_refused(SQLiteStore.open(path), DatabaseError, "cannot create")
    assert "\n" not in str(raised)
    assert not path.exists()


def header(path: Path, *, app_id: int, version: int, table: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    if table:
        conn.execute("CREATE TABLE other (x)")
    conn.execute(f"PRAGMA application_id = {app_id}")
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


@pytest.mark.parametrize(
    ("app_id", "version", "table", "error"),
    [
        (0, 0, True, NotANanoagentDatabaseError),  # another application's tables appeared
        (schema.APPLICATION_ID, schema.SCHEMA_VERSION + 1, False, SchemaTooNewError),
    ],
    ids=["foreign", "newer"],
)
def test_migration_rechecks_the_header_inside_the_write_lock(
    tmp_path: Path, app_id: int, version: int, table: bool, error: type[Exception]
) -> None:
    """_migrate runs in BEGIN IMMEDIATE after a first read of the header; what it reads again
    there (another process may have written the file meanwhile) is refused, untouched."""
    path = tmp_path / "raced.db"
    conn = header(path, app_id=app_id, version=version, table=table)
    try:
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(error):
            sqlite_store._migrate(conn, str(path))  # pyright: ignore[reportPrivateUsage]
        conn.execute("ROLLBACK")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
        assert names == (["other"] if table else [])
    finally:
        conn.close()
