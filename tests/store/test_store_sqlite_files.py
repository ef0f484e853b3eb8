"""SQLite store: schema versions, files that must be refused, faults, paths and modes."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from storekit import OWNER, assert_open_refused, file_digest, new_run, snapshot, step_for, task

from nanoagent_core.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    NanoagentError,
    NotANanoagentDatabaseError,
    PathNotAllowedError,
    SchemaTooNewError,
    ValidationError,
)
from nanoagent_core.models import Phase
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SCHEMA_VERSION, SQLiteStore
from nanoagent_core.sqlite import sql as schema

TABLES = {"runs", "tasks", "results", "events", "attempts", "approvals", "model_calls"}


def sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def filled_db(path: Path, runs: int = 3, steps: int = 40) -> None:
    """A real nanoagent database with data, closed (so the WAL is folded into the file)."""
    store = await SQLiteStore.open(path)
    try:
        for n in range(runs):
            run_id = f"run-{n}"
            await store.create_run(new_run(run_id, goal="a long goal " * 10))
            run = await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=60)
            for i in range(steps):
                await store.commit_step(run_id, step_for(i), epoch=run.epoch)
    finally:
        await store.close()
    assert not any(p.exists() for p in sidecars(path))


async def assert_refused(
    path: Path, error: type[NanoagentError], *, read_only_too: bool = True
) -> NanoagentError:
    """Opening ``path`` raises ``error`` (in both modes) and leaves its bytes unchanged."""
    digest = file_digest(path)
    raised = await assert_open_refused(SQLiteStore.open(path), error)
    if read_only_too:
        await assert_open_refused(SQLiteStore.open(path, read_only=True), error)
    assert file_digest(path) == digest
    assert "\n" not in str(raised)
    assert str(path) in str(raised)
    return raised


# -- schema ------------------------------------------------------------------------------------


async def test_fresh_database_has_current_schema(db_path: Path) -> None:
    store = await SQLiteStore.open(db_path)
    await store.close()
    conn = raw(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r for (r,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert names == TABLES
    finally:
        conn.close()
    assert SCHEMA_VERSION == len(schema.MIGRATIONS) >= 1


async def test_reopening_changes_nothing(db_path: Path) -> None:
    await filled_db(db_path, runs=1, steps=3)
    digest = file_digest(db_path)
    store = await SQLiteStore.open(db_path)
    assert [r.run_id for r in await store.list_runs()] == ["run-0"]
    await store.close()
    assert file_digest(db_path) == digest


@pytest.mark.parametrize("too_new", [SCHEMA_VERSION + 1, 99])
async def test_newer_schema_is_refused_and_not_written(db_path: Path, too_new: int) -> None:
    await filled_db(db_path, runs=1, steps=2)
    conn = raw(db_path)
    conn.execute(f"PRAGMA user_version = {too_new}")
    conn.close()
    error = await assert_refused(db_path, SchemaTooNewError)
    assert f"schema version {too_new}" in str(error)
    assert "upgrade nanoagent" in str(error)
    conn = raw(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == too_new
    conn.close()


async def test_missing_file_without_create(db_path: Path) -> None:
    await assert_open_refused(SQLiteStore.open(db_path, create=False), DatabaseNotFoundError)
    await assert_open_refused(SQLiteStore.open(db_path, read_only=True), DatabaseNotFoundError)
    assert not db_path.exists()


async def test_read_only_open_of_an_empty_file_is_no_database_yet(db_path: Path) -> None:
    """An empty file (another process is creating it right now) reads as "nothing here yet",
    so `list` racing a first `run` shows no runs instead of failing."""
    db_path.touch()
    await assert_open_refused(
        SQLiteStore.open(db_path, read_only=True),
        DatabaseNotFoundError,
        "no nanoagent database here yet",
    )
    assert db_path.read_bytes() == b""


async def test_read_only_store_refuses_writes(db_path: Path) -> None:
    await filled_db(db_path, runs=1, steps=1)
    digest = file_digest(db_path)
    store = await SQLiteStore.open(db_path, read_only=True)
    try:
        assert store.read_only
        with pytest.raises(DatabaseError, match="read-only"):
            await store.create_run(new_run("other"))
        with pytest.raises(DatabaseError, match="read-only"):
            await store.request_abort("run-0")
        assert len(await store.read_events()) == 3
    finally:
        await store.close()
    assert file_digest(db_path) == digest


async def test_read_only_path_with_uri_characters(tmp_path: Path) -> None:
    """A read-only open goes through a file: URI; '?', '#' and '%' in the path are data."""
    odd = tmp_path / "we?ird #dir %41"
    odd.mkdir()
    await filled_db(odd / "x.db", runs=1, steps=1)
    decoy = tmp_path / "we"  # where a naive URI would point for 'we?ird...'
    assert not decoy.exists()
    store = await SQLiteStore.open(odd / "x.db", read_only=True)
    try:
        assert [r.run_id for r in await store.list_runs()] == ["run-0"]
    finally:
        await store.close()
    assert not decoy.exists()


# -- files that are not ours -------------------------------------------------------------------


async def test_text_file_refused_unchanged(db_path: Path) -> None:
    db_path.write_text("this is my shopping list\n" * 200)
    error = await assert_refused(db_path, NotANanoagentDatabaseError)
    assert "not a nanoagent database" in str(error)
    assert not any(p.exists() for p in sidecars(db_path))


async def test_foreign_sqlite_file_refused_unchanged(db_path: Path) -> None:
    conn = raw(db_path)
    conn.execute("CREATE TABLE bookmarks (url TEXT, title TEXT)")
    conn.execute("INSERT INTO bookmarks VALUES ('https://example.org', 'Example')")
    conn.close()
    error = await assert_refused(db_path, NotANanoagentDatabaseError)
    assert "another application" in str(error)


async def test_foreign_sqlite_file_with_a_runs_table_refused(db_path: Path) -> None:
    """Looking like ours is not enough: the application id decides."""
    conn = raw(db_path)
    conn.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY)")
    conn.close()
    await assert_refused(db_path, NotANanoagentDatabaseError)


async def test_empty_sqlite_file_of_another_application_refused(db_path: Path) -> None:
    conn = raw(db_path)
    conn.execute("PRAGMA user_version = 7")  # no tables, but someone else's version stamp
    conn.close()
    await assert_refused(db_path, NotANanoagentDatabaseError)


async def test_directory_refused(tmp_path: Path) -> None:
    await assert_open_refused(SQLiteStore.open(tmp_path), NotANanoagentDatabaseError, "directory")


def corrupt(path: Path, rng: random.Random, mode: str) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    pages = len(data) // page
    assert pages > 6
    if mode == "pages":  # every page after the schema page but the last, overwritten
        data[page : (pages - 1) * page] = bytes([0xA5]) * ((pages - 2) * page)
    elif mode == "page":  # one whole page of noise
        p = rng.randrange(1, pages)
        data[p * page : (p + 1) * page] = rng.randbytes(page)
    elif mode == "bytes":  # scattered flipped bytes past the header page
        for _ in range(20):
            data[rng.randrange(page, len(data))] = rng.randrange(256)
    else:  # a short run of noise somewhere in a middle page
        at = rng.randrange(page, len(data) - 64)
        data[at : at + 64] = rng.randbytes(64)
    path.write_bytes(bytes(data))


async def exercise(path: Path) -> list[str]:
    """Use a store on ``path`` every way there is; return what happened to each use.

    The only acceptable failures are nanoagent's own errors (a DatabaseError, or what the
    damaged data honestly implies, such as RunNotFoundError); anything else escapes and
    fails the test.
    """
    try:
        store = await SQLiteStore.open(path)
    except DatabaseError as exc:
        return [f"refused at open: {exc}"]
    uses: list[Callable[[], Awaitable[object]]] = [
        store.list_runs,
        store.count_runs,
        lambda: store.read_events(limit=100_000),
        lambda: store.get_run("run-1"),
        lambda: store.get_all_tasks("run-1"),
        lambda: store.get_pending_tasks("run-0"),
        lambda: store.get_all_results("run-2"),
        lambda: store.append_event("run-0", NewEvent(kind="note")),
        lambda: store.save_task("run-2", task("new"), epoch=1),
    ]
    seen: list[str] = []
    try:
        for use in uses:
            try:
                await use()
                seen.append("ok")
            except NanoagentError as exc:  # e.g. RunNotFoundError when damage hid a run
                seen.append(f"{type(exc).__name__}: {exc}")
    finally:
        await store.close()
    return seen


async def test_corrupt_file_refused_at_open(tmp_path: Path) -> None:
    """Middle pages overwritten: refused with a clear error, the file left as it was."""
    db = tmp_path / "corrupt.db"
    await filled_db(db)
    corrupt(db, random.Random(0), "pages")
    error = await assert_refused(db, NotANanoagentDatabaseError)
    assert "damaged" in str(error) or "not a nanoagent database" in str(error)


@pytest.mark.parametrize("mode", ["page", "bytes", "noise"])
async def test_corrupt_file_never_raises_a_raw_error(tmp_path: Path, mode: str) -> None:
    """Damage in 20 random places per mode: every use either works or raises DatabaseError
    (never a raw sqlite3 error, nor a ValueError from decoding a mangled row)."""
    pristine = tmp_path / "pristine.db"
    await filled_db(pristine)
    outcomes: list[str] = []
    for seed in range(20):
        db = tmp_path / f"{mode}-{seed}.db"
        shutil.copy(pristine, db)
        corrupt(db, random.Random(seed), mode)
        outcomes += await exercise(db)
    # The damage is real: at least some of it is noticed, each time in one clear line.
    failures = [o for o in outcomes if o != "ok"]
    assert all("\n" not in o for o in failures), failures
    database_errors = [o for o in failures if str(tmp_path) in o]
    assert database_errors, outcomes


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["page", "bytes", "noise"])
async def test_corrupt_file_never_raises_a_raw_error_many_seeds(tmp_path: Path, mode: str) -> None:
    pristine = tmp_path / "pristine.db"
    await filled_db(pristine, runs=4, steps=150)
    for seed in range(500):
        db = tmp_path / "damaged.db"
        shutil.copy(pristine, db)
        corrupt(db, random.Random(seed), mode)
        assert all("\n" not in o for o in await exercise(db))
        db.unlink()
        for side in sidecars(db):
            side.unlink(missing_ok=True)


# -- disk full ---------------------------------------------------------------------------------


async def test_disk_full_raises_and_keeps_previous_state(db_path: Path) -> None:
    await filled_db(db_path, runs=1, steps=5)
    conn = raw(db_path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    store = await SQLiteStore.open(db_path, extra_pragmas={"max_page_count": pages + 1})
    try:
        run = await store.get_run("run-0")
        before = await snapshot(store, "run-0")
        big = Step(
            phase=Phase.EXECUTING,
            iteration=6,
            tasks=(task("big"),),
            results={"big": "x" * 200_000},
            events=(NewEvent(kind="note", data={"pad": "y" * 100_000}),),
        )
        with pytest.raises(DatabaseError, match="full") as raised:
            await store.commit_step("run-0", big, epoch=run.epoch)
        assert "\n" not in str(raised.value)
        assert await snapshot(store, "run-0") == before
        # Still usable: a small write fits, and goes through.
        small = Step(phase=Phase.EXECUTING, iteration=6, current_task_id="t0001")
        await store.commit_step("run-0", small, epoch=run.epoch)
    finally:
        await store.close()
    store = await SQLiteStore.open(db_path)
    try:
        after = await snapshot(store, "run-0")
        assert after.run.iteration == 6
        assert (after.tasks, after.results, after.events) == (
            before.tasks,
            before.results,
            before.events,
        )
    finally:
        await store.close()


# -- paths and file modes ----------------------------------------------------------------------


async def test_allowed_dir_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "link").symlink_to(outside)
    refused = [
        str(allowed / ".." / "x.db"),
        str(outside / "x.db"),
        "/etc/nanoagent-test.db",
        str(allowed / "link" / "x.db"),  # a symlink out of the allowed directory
    ]
    for location in refused:
        raised = await assert_open_refused(
            SQLiteStore.open(location, allowed_dir=allowed), PathNotAllowedError
        )
        assert "\n" not in str(raised)
    monkeypatch.chdir(allowed)
    await assert_open_refused(SQLiteStore.open("../x.db", allowed_dir=allowed), PathNotAllowedError)
    assert sorted(p.name for p in tmp_path.rglob("*.db")) == []
    assert not Path("/etc/nanoagent-test.db").exists()

    for location in ["inside.db", str(allowed / "sub" / "deeper.db"), ":memory:"]:
        store = await SQLiteStore.open(location, allowed_dir=allowed)
        await store.create_run(new_run())
        await store.close()
    assert (allowed / "inside.db").exists()
    assert (allowed / "sub" / "deeper.db").exists()


async def test_memory_database_always_allowed(tmp_path: Path) -> None:
    store = await SQLiteStore.open(":memory:", allowed_dir=tmp_path / "nowhere")
    try:
        assert store.location == ":memory:"
        await store.create_run(new_run())
        assert (await store.get_run("run-1")).goal == "write a haiku"
    finally:
        await store.close()


async def test_new_database_files_are_private(db_path: Path) -> None:
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        store = await SQLiteStore.open(db_path)
        try:
            await store.create_run(new_run())
            present = [p for p in [db_path, *sidecars(db_path)] if p.exists()]
            assert len(present) >= 3  # the file, -wal and -shm while open
            for path in present:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        finally:
            await store.close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


# -- foreign keys ------------------------------------------------------------------------------


async def test_foreign_keys_enforced(sqlite_store: SQLiteStore, db_path: Path) -> None:
    store = sqlite_store
    await store.create_run(new_run())
    run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    before = await snapshot(store, "run-1")
    with pytest.raises(ValidationError, match="ghost"):
        await store.save_result("run-1", "ghost", "orphan", epoch=run.epoch)
    assert await snapshot(store, "run-1") == before

    conn = raw(db_path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        orphans = [
            "INSERT INTO results (run_id, task_id, result) VALUES ('run-1', 'ghost', 'x')",
            "INSERT INTO results (run_id, task_id, result) VALUES ('nope', 'ghost', 'x')",
            "INSERT INTO tasks (run_id, task_id, seq, description, status, priority)"
            " VALUES ('nope', 't', 0, 'd', 'pending', 5)",
            "INSERT INTO events (run_id, ts, kind, data) VALUES ('nope', 0, 'note', '{}')",
        ]
        for statement in orphans:
            with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
                conn.execute(statement)
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES]
        assert sum(counts) == 1 + 2  # one run, its two events
    finally:
        conn.close()


async def test_two_runs_may_hold_the_same_task_id(db_path: Path) -> None:
    await filled_db(db_path, runs=2, steps=3)
    conn = raw(db_path)
    try:
        rows = conn.execute(
            "SELECT task_id, count(*) FROM tasks GROUP BY task_id ORDER BY task_id"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [("t0000", 2), ("t0001", 2), ("t0002", 2)]


# -- change detection --------------------------------------------------------------------------


async def test_change_token_moves_when_another_connection_commits(db_path: Path) -> None:
    writer = await SQLiteStore.open(db_path)
    watcher = await SQLiteStore.open(db_path, read_only=True)
    try:
        first = await watcher.change_token()
        assert await watcher.change_token() == first
        await writer.create_run(new_run())
        second = await watcher.change_token()
        assert second != first
        assert await watcher.change_token() == second
    finally:
        await watcher.close()
        await writer.close()


# -- errors ------------------------------------------------------------------------------------


async def test_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    text = tmp_path / "text.db"
    text.write_text("line one\nline two\n")
    newer = tmp_path / "newer.db"
    await filled_db(newer, runs=1, steps=1)
    conn = raw(newer)
    conn.execute("PRAGMA user_version = 1000")
    conn.close()
    attempts: list[tuple[Path, dict[str, Any]]] = [
        (text, {}),
        (newer, {}),
        (newer, {"read_only": True}),
        (tmp_path / "missing.db", {"create": False}),
        (tmp_path / "x.db", {"synchronous": "OFF"}),
    ]
    for path, options in attempts:
        raised = await assert_open_refused(SQLiteStore.open(path, **options), DatabaseError)
        assert "\n" not in str(raised)
        assert str(tmp_path) in str(raised) or "synchronous" in str(raised)


async def test_synchronous_full_and_busy_timeout_applied(db_path: Path) -> None:
    store = await SQLiteStore.open(db_path, synchronous="FULL", busy_timeout=2.5)
    try:
        pragmas = await store._call(  # pyright: ignore[reportPrivateUsage]
            lambda conn: [
                conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("synchronous", "busy_timeout", "foreign_keys", "journal_mode")
            ]
        )
    finally:
        await store.close()
    assert pragmas == [2, 2500, 1, "wal"]


async def test_migration_chain_matches_fresh_schema_and_keeps_data(tmp_path: Path) -> None:
    """A database at version 1 with a run in it migrates to the current version with its
    data intact, and ends with exactly the schema a fresh database gets."""
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    for statement in schema.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(schema.SET_APPLICATION_ID)
    conn.execute(
        "INSERT INTO runs (run_id, goal, max_iterations, agent, phase, status, created_at,"
        " updated_at) VALUES ('kept', 'a goal', 5, 'demo', 'planning', 'interrupted', 1.0, 1.0)"
    )
    conn.commit()
    conn.close()

    store = await SQLiteStore.open(old)
    try:
        kept = await store.get_run("kept")
    finally:
        await store.close()
    assert (kept.goal, kept.status.value) == ("a goal", "interrupted")

    fresh = tmp_path / "fresh.db"
    await (await SQLiteStore.open(fresh)).close()

    def shape(path: Path) -> tuple[int, list[tuple[str, str, str]]]:
        db = sqlite3.connect(path)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            rows = db.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
            ).fetchall()
        finally:
            db.close()
        return version, rows

    assert shape(old) == shape(fresh)
    assert shape(fresh)[0] == SCHEMA_VERSION >= 2


async def test_a_refusal_test_whose_store_opens_fails_instead_of_hanging(db_path: Path) -> None:
    """assert_open_refused closes a store that opened against expectation, then fails: an
    open store's connection thread would otherwise keep the interpreter alive at exit."""
    opened: list[SQLiteStore] = []

    async def opening() -> SQLiteStore:
        store = await SQLiteStore.open(db_path)
        opened.append(store)
        return store

    with pytest.raises(pytest.fail.Exception, match="the store opened"):
        await assert_open_refused(opening(), DatabaseError)
    with pytest.raises(DatabaseError, match="closed"):
        await opened[0].list_runs()
