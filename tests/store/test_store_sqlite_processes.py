"""SQLite store shared by real processes (forked from a fork server that never opened a
store: no connection crosses a fork)."""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path
from typing import Any

import prockit
import pytest
import storekit
from storekit import new_run, raw_counts

from nanoagent_core.sqlite import SCHEMA_VERSION, SQLiteStore
from nanoagent_core.sqlite import sql as schema

JOIN_TIMEOUT = 90.0
HERE = Path(__file__).parent


def drain(results: Any, count: int, procs: list[ForkServerProcess]) -> list[tuple[Any, ...]]:
    """Collect ``count`` messages, failing fast (not hanging) if a child died."""
    out: list[tuple[Any, ...]] = []
    while len(out) < count:
        try:
            out.append(results.get(timeout=1.0))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead or all(p.exitcode is not None for p in procs):
                pytest.fail(f"children ended early: {[p.exitcode for p in procs]}; got {out}")
    return out


def join_all(procs: list[ForkServerProcess]) -> None:
    for proc in procs:
        proc.join(JOIN_TIMEOUT)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)


async def make_db(path: Path, run_ids: list[str] = []) -> None:  # noqa: B006 (never mutated)
    store = await SQLiteStore.open(path)
    try:
        for run_id in run_ids:
            await store.create_run(new_run(run_id))
    finally:
        await store.close()


# -- many writers and a reader -----------------------------------------------------------------

WRITERS = 8
STEPS = 500


def test_writers_and_a_reader_share_one_file(db_path: Path, forking: ForkServerContext) -> None:
    """8 processes x 500 committed steps, a 9th process reading all along: no error, no lost
    row, no half-step ever visible, and the event log read by id has no gaps."""
    asyncio.run(make_db(db_path))
    results = forking.Queue()
    barrier = forking.Barrier(WRITERS + 1)
    stop = forking.Event()
    saw = forking.Event()  # writers pause halfway until the reader has seen events
    run_ids = [f"writer-{n}" for n in range(WRITERS)]
    writers = [
        forking.Process(
            target=prockit.commit_worker,
            args=(str(db_path), rid, STEPS, barrier, results, saw),
        )
        for rid in run_ids
    ]
    reader = forking.Process(
        target=prockit.reader_worker, args=(str(db_path), barrier, stop, results, saw)
    )
    procs = [*writers, reader]
    for proc in procs:
        proc.start()
    try:
        done = drain(results, WRITERS, procs)
        stop.set()
        done += drain(results, 1, procs)
    finally:
        stop.set()
        join_all(procs)

    errors = [msg for msg in done if msg[0] != "ok"]
    assert errors == []
    report = next(msg[2] for msg in done if msg[1] == "reader")
    assert report["problems"] == []
    per_run = STEPS + 2  # run_created + run_claimed + one event per step
    assert report["seen"] == report["last_id"] == WRITERS * per_run
    assert report["reads_while_writing"] > 0  # surely: the writers waited for one halfway

    expected = dict.fromkeys(run_ids, STEPS)
    assert raw_counts(db_path, "tasks") == expected
    assert raw_counts(db_path, "results") == expected
    assert raw_counts(db_path, "events") == dict.fromkeys(run_ids, per_run)

    async def check() -> None:
        store = await SQLiteStore.open(db_path, read_only=True)
        try:
            for rid in run_ids:
                run = await store.get_run(rid)
                assert (run.iteration, run.tasks_total, run.tasks_done) == (STEPS, STEPS, STEPS)
                results_ = await store.get_all_results(rid)
                assert results_ == {f"t{i:04d}": f"result {i}" for i in range(STEPS)}
                events = await store.read_events(run_id=rid, limit=10_000)
                assert [e.data.get("i") for e in events[2:]] == list(range(STEPS))
        finally:
            await store.close()

    asyncio.run(check())


# -- claim race --------------------------------------------------------------------------------

RACERS = 8
ROUNDS = 15


@pytest.mark.parametrize("owner_gone", [False, True], ids=["epoch-and-lease", "epoch-only"])
def test_claim_race_has_exactly_one_winner(
    db_path: Path, owner_gone: bool, forking: ForkServerContext
) -> None:
    """8 processes released together claim the same free run; over 15 runs, each run has
    exactly one winner, the others get RunBusyError, and the stored owner is the winner.
    With ``owner_gone`` the lease check lets every racer through: only the claim's
    compare-and-set on the epoch stops the losers."""
    run_ids = [f"race-{n}" for n in range(ROUNDS)]
    asyncio.run(make_db(db_path, run_ids))
    results = forking.Queue()
    barrier = forking.Barrier(RACERS)
    procs = [
        forking.Process(
            target=prockit.claim_worker,
            args=(str(db_path), run_ids, barrier, results, owner_gone),
        )
        for _ in range(RACERS)
    ]
    for proc in procs:
        proc.start()
    try:
        reports = drain(results, RACERS, procs)
    finally:
        join_all(procs)

    assert [detail for kind, _, detail in reports if kind != "ok"] == []
    outcomes = [
        (kind, rid, (int(pid), epoch)) for _, pid, per in reports for kind, rid, epoch in per
    ]
    winners = {o[1]: o[2] for o in outcomes if o[0] == "won"}
    assert Counter(o[1] for o in outcomes if o[0] == "won") == Counter(run_ids)
    assert Counter(o[1] for o in outcomes if o[0] == "busy") == Counter(
        dict.fromkeys(run_ids, RACERS - 1)
    )

    async def check() -> None:
        store = await SQLiteStore.open(db_path, read_only=True)
        try:
            for rid in run_ids:
                run = await store.get_run(rid)
                pid, epoch = winners[rid]
                assert (run.epoch, epoch) == (1, 1)
                assert run.owner is not None
                assert run.owner.pid == pid
                kinds = [e.kind for e in await store.read_events(run_id=rid)]
                assert kinds == ["run_created", "run_claimed"]
        finally:
            await store.close()

    asyncio.run(check())


# -- opening one fresh file at the same moment -------------------------------------------------

OPENERS = 6
FRESH_FILES = 6


def test_processes_opening_a_fresh_file_together(
    tmp_path: Path, forking: ForkServerContext
) -> None:
    """Several processes create and migrate the same new file at once: all succeed, the
    schema is created once, and every process's run is there."""
    dbs = [str(tmp_path / f"fresh-{n}.db") for n in range(FRESH_FILES)]
    results = forking.Queue()
    barrier = forking.Barrier(OPENERS)
    names = [f"opener-{n}" for n in range(OPENERS)]
    procs = [
        forking.Process(target=prockit.open_worker, args=(dbs, name, barrier, results))
        for name in names
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = drain(results, OPENERS * FRESH_FILES, procs)
    finally:
        join_all(procs)
    assert [o for o in outcomes if o[0] != "ok"] == []
    for db in dbs:
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            assert app_id == schema.APPLICATION_ID
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            runs = [r for (r,) in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
            assert runs == sorted(names)
        finally:
            conn.close()


# -- a file this user cannot write (privileges dropped in a child) -----------------------------

NOBODY = 65534


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's private (0700) tmp tree, so user nobody can reach it.

    As root, the child drops to user nobody and the files stay root's; as anyone else (no
    privileges to drop), the child runs as this user and the modes deny it instead: both
    variants run, neither skips."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="nanoagent-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        path.chmod(0o755)
        for child in path.iterdir():
            child.chmod(0o644)
        shutil.rmtree(path)


ROOT = os.geteuid() == 0
#: the user the child runs as: nobody when root can drop to it, else this user
OTHER = NOBODY if ROOT else os.geteuid()


def deny(db: Path, *, file_mode: int, directory_writable: bool) -> None:
    """Make ``db`` and its directory what the child (OTHER) may not touch: as root, the
    files stay root's (the modes then speak to nobody as "other"); as a plain user, the
    owner's own bits are taken away."""
    directory = db.parent
    if ROOT:
        db.chmod(file_mode)
        if directory_writable:
            os.chown(directory, NOBODY, NOBODY)
    else:
        db.chmod(file_mode & 0o007 | (file_mode & 0o007) << 6)  # "other" bits for the owner
        directory.chmod(0o755 if directory_writable else 0o555)


def run_as_nobody(db: Path) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, str(HERE / "readonly_child.py"), str(db), str(OTHER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    import json

    return json.loads(child.stdout)


def test_unwritable_file_reads_but_refuses_writes(shared_dir: Path) -> None:
    """As user nobody, with a database file owned by root and mode 0644 in a directory
    nobody may write (for the -shm file): reads work; every write raises DatabaseError and
    changes nothing; read_only=True opens and reads."""
    db = shared_dir / "ro.db"
    asyncio.run(make_db(db, ["r1", "r2"]))
    deny(db, file_mode=0o644, directory_writable=True)
    digest = storekit.file_digest(db)

    report = run_as_nobody(db)

    assert report["uid"] == OTHER
    assert sorted(report["read_write_open"]["runs"]) == ["r1", "r2"]
    assert sorted(report["read_write_open"]["runs_after"]) == ["r1", "r2"]
    for name, outcome in report["read_write_open"]["writes"].items():
        assert outcome["type"] == "DatabaseError", name
        assert "readonly" in outcome["message"], name
        assert "\n" not in outcome["message"]
    assert sorted(report["read_only_open"]["runs"]) == ["r1", "r2"]
    assert report["read_only_open"]["events"] == 2
    assert report["read_only_open"]["write"]["type"] == "DatabaseError"
    assert storekit.file_digest(db) == digest


def test_unwritable_directory_gives_a_clear_error(shared_dir: Path) -> None:
    """The same file in a directory nobody cannot write: SQLite cannot create the -shm
    file a WAL database needs, so opening fails, with a DatabaseError that says so (not a
    claim that the file is not a nanoagent database)."""
    db = shared_dir / "ro.db"
    asyncio.run(make_db(db, ["r1"]))
    deny(db, file_mode=0o644, directory_writable=False)
    report = run_as_nobody(db)
    for mode in ("read_write_open", "read_only_open"):
        outcome = report[mode]["open_error"]
        assert outcome["type"] == "DatabaseError", outcome
        assert "-shm" in outcome["message"]
        assert "\n" not in outcome["message"]


def test_unreadable_file_gives_a_clear_error(shared_dir: Path) -> None:
    db = shared_dir / "private.db"
    asyncio.run(make_db(db, ["r1"]))  # created 0600
    deny(db, file_mode=0o600, directory_writable=True)
    report = run_as_nobody(db)
    for mode in ("read_write_open", "read_only_open"):
        outcome = report[mode]["open_error"]
        assert outcome["type"] == "DatabaseError", outcome
        assert "\n" not in outcome["message"]
