"""Issue 9, security and detached starts, with the real console script, real detached workers
and real SQLite files:

* item 1: detached workers never import a module planted in the caller's directory;
* item 3: a ``file:`` address is refused by every entry point, nothing written anywhere;
* item 6: the demo agent's ``log`` option stays inside NANOAGENT_ALLOWED_DIR, on resume too;
* item 10: a detached start that fails says so (exit 1, the worker's first error line), and
  the worker's stderr is kept in a 0600 log that ``show`` names.

Every wait is a bounded poll on a condition.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from loopkit import NANOAGENT, Reaper, Result, acli_here, read_run, wait_until

from nanoagent_core.demo import demo_runs
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.status import ShownStatus, shown_status

FAST = ["--option", "tasks=2", "--option", "delay=0", "--option", "followups=0"]

#: A module that, if imported, leaves a marker and kills the import.
PLANTED = """\
import pathlib
pathlib.Path({marker!r}).write_text("imported from the working directory")
raise SystemExit(97)
"""


def run_cli(*args: str, env: Mapping[str, str], cwd: Path | None = None) -> Result:
    done = subprocess.run(
        [NANOAGENT, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


async def arun_cli(*args: str, env: Mapping[str, str], cwd: Path | None = None) -> Result:
    return await asyncio.to_thread(run_cli, *args, env=env, cwd=cwd)


def one_line(result: Result) -> str:
    """The single line a refused command printed (no traceback)."""
    lines = result.err_lines
    assert len(lines) == 1, result
    assert "Traceback" not in result.err, result
    return lines[0]


async def store_run(db: str | Path, run: RunState) -> None:
    store = await SQLiteStore.open(db)
    try:
        await store.create_run(run)
    finally:
        await store.close()


async def wait_finished(db: str | Path, run_id: str, timeout: float = 60.0) -> RunState:
    return await wait_until(
        lambda: read_run(db, run_id),
        lambda run: run.status.finished,
        timeout=timeout,
        interval=0.1,
        what=f"run {run_id} to finish",
    )


def worker_log_path(db: str, run_id: str) -> Path:
    """Where README says a detached worker's stderr goes: next to the database."""
    return Path(db + ".logs") / f"{run_id}.log"


def plant(directory: Path) -> Path:
    """``sqlite3.py`` and ``pydantic.py`` (modules every worker imports) in ``directory``;
    returns the marker path."""
    marker = directory / "PLANTED-CODE-RAN"
    for name in ("sqlite3", "pydantic"):
        (directory / f"{name}.py").write_text(PLANTED.format(marker=str(marker)))
    return marker


# -- item 1: planted modules ---------------------------------------------------------------


async def test_detached_workers_never_import_modules_from_the_working_directory(
    tmp_path: Path, env: dict[str, str], reaper: Reaper
) -> None:
    cwd = tmp_path / "hostile"
    cwd.mkdir()
    marker = plant(cwd)
    db = str(tmp_path / "runs.db")

    started = await arun_cli("run", "planted one", "--db", db, "--detach", *FAST, env=env, cwd=cwd)
    assert started.code == 0, started
    run_id = started.out.strip()
    assert (await wait_finished(db, run_id)).status is RunStatus.COMPLETED

    # resume --detach of an interrupted run, the location given only through NANOAGENT_DB
    await store_run(
        db,
        RunState(
            run_id="stopped",
            goal="planted two",
            max_iterations=5,
            status=RunStatus.INTERRUPTED,
            agent_options={"tasks": "2", "delay": "0", "followups": "0"},
        ),
    )
    resumed = await arun_cli(
        "resume", "stopped", "--detach", env={**env, "NANOAGENT_DB": db}, cwd=cwd
    )
    assert resumed.code == 0, resumed
    assert (await wait_finished(db, "stopped")).status is RunStatus.COMPLETED

    # demo: its detached workers (one killed on purpose)
    demo_db = str(tmp_path / "demo.db")
    demo = await arun_cli("demo", "--no-dashboard", "--db", demo_db, env=env, cwd=cwd)
    store = await SQLiteStore.open(demo_db, create=False)
    try:
        runs = await store.list_runs(limit=100)
    finally:
        await store.close()
    for run in runs:
        if run.owner is not None:
            reaper.track(run.owner.pid)
    assert demo.code == 0, demo
    assert sorted(run.run_id for run in runs) == sorted(demo.out.split())
    assert len(runs) == len(demo_runs())
    assert all(run.epoch >= 1 for run in runs)  # every demo worker claimed its run
    assert not marker.exists(), marker.read_text()


async def test_the_location_reaches_a_worker_through_its_environment_not_its_argv(
    tmp_path: Path, env: dict[str, str], reaper: Reaper
) -> None:
    db = str(tmp_path / "secret-place.db")
    started = await arun_cli(
        "run", "long", "--detach", "--option", "delay=60", env={**env, "NANOAGENT_DB": db}
    )
    assert started.code == 0, started
    run = await read_run(db, started.out.strip())
    assert run.owner is not None
    reaper.track(run.owner.pid)
    argv = Path(f"/proc/{run.owner.pid}/cmdline").read_bytes().split(b"\0")
    assert b"secret-place" not in b" ".join(argv), argv
    assert b"-P" in argv  # the working directory is not on its sys.path
    environ = Path(f"/proc/{run.owner.pid}/environ").read_bytes().split(b"\0")
    assert f"NANOAGENT_DB={db}".encode() in environ


# -- item 3: file: URIs --------------------------------------------------------------------


@pytest.mark.parametrize("via_env", [False, True], ids=["--db", "NANOAGENT_DB"])
async def test_a_file_uri_is_refused_by_every_entry_point(
    tmp_path: Path, env: dict[str, str], via_env: bool
) -> None:
    allowed = tmp_path / "allowed"
    elsewhere = tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    uri = f"file:{elsewhere}/x.db"
    base = {**env, "NANOAGENT_ALLOWED_DIR": str(allowed)}
    # refused by the console script in a process of its own: a detached start and the
    # dashboard given the address by flag, a listing given it by the environment it starts
    # with; the rest run the same argv in this process
    in_a_process = [["list"]] if via_env else [["run", "goal", "--detach", *FAST], []]
    commands = [
        ["run", "goal", *FAST],
        ["run", "goal", "--detach", *FAST],
        ["resume", "r1"],
        ["resume", "r1", "--detach"],
        ["abort", "r1"],
        ["list"],
        ["list", "--json"],
        ["show", "r1"],
        ["demo", "--no-dashboard"],
        ["tui"],
        [],  # the dashboard, the default command
    ]
    for command in commands:
        args = command if via_env else [*command, "--db", uri]
        if not command and not via_env:
            args = ["--db", uri]
        run = arun_cli if command in in_a_process else acli_here
        result = await run(
            *args, env={**base, "NANOAGENT_DB": uri} if via_env else base, cwd=allowed
        )
        assert result.code == 2, (command, result)
        assert "'file:' URIs are not taken" in one_line(result), result
    assert list(elsewhere.iterdir()) == []
    assert list(allowed.iterdir()) == []  # no stray 'file:' folder either
    with pytest.raises(ValidationError):
        await SQLiteStore.open(uri)
    with pytest.raises(ValidationError):
        await SQLiteStore.open(uri, read_only=True, create=False)
    assert list(elsewhere.iterdir()) == []


async def test_a_file_named_like_a_uri_is_reached_as_a_plain_path(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = await arun_cli("run", "goal", "--db", "./file:x.db", *FAST, env=env, cwd=tmp_path)
    assert result.code == 0, result
    made = tmp_path / "file:x.db"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    listed = await acli_here("list", "--json", "--db", "./file:x.db", env=env, cwd=tmp_path)
    assert listed.code == 0, listed
    assert '"completed"' in listed.out


# -- item 6: the demo agent's log ----------------------------------------------------------


async def test_the_demo_log_stays_inside_the_allowed_directory(
    tmp_path: Path, env: dict[str, str]
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside.log"
    db = str(allowed / "runs.db")
    guarded = {**env, "NANOAGENT_ALLOWED_DIR": str(allowed)}

    refused = await acli_here(
        "run", "goal", "--db", db, *FAST, "--option", f"log={outside}", env=guarded
    )
    assert refused.code == 2, refused
    assert "outside the allowed directory" in one_line(refused)
    assert not outside.exists()

    # a crafted database: an interrupted run whose stored options name a file outside
    await store_run(
        db,
        RunState(
            run_id="crafted",
            goal="crafted",
            max_iterations=5,
            status=RunStatus.INTERRUPTED,
            agent_options={"tasks": "2", "delay": "0", "log": str(outside)},
        ),
    )
    before = await read_run(db, "crafted")
    for args in (["resume", "crafted"], ["resume", "crafted", "--detach"]):
        result = await acli_here(*args, "--db", db, env=guarded)
        assert result.code == 2, result
        assert "outside the allowed directory" in one_line(result)
    assert not outside.exists()
    assert await read_run(db, "crafted") == before  # nothing claimed, nothing written

    inside = allowed / "journal.log"
    ok = await acli_here("run", "goal", "--db", db, *FAST, "--option", f"log={inside}", env=guarded)
    assert ok.code == 0, ok
    assert stat.S_IMODE(inside.stat().st_mode) == 0o600
    assert len(inside.read_text().splitlines()) == 2


# -- item 10: a failed detached start ------------------------------------------------------

#: Every write to ``runs`` fails as a full disk would (SQLITE_FULL's words); inserts pass, so
#: that the run is stored and only its worker's claim fails.
FULL = (
    "CREATE TRIGGER disk_full BEFORE UPDATE ON runs "
    "BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END"
)


def fill_up(db: str) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(FULL)
        conn.commit()
    finally:
        conn.close()


async def test_a_detached_start_that_fails_says_so_with_the_workers_first_error(
    tmp_path: Path, env: dict[str, str]
) -> None:
    db = str(tmp_path / "runs.db")
    await store_run(
        db,
        RunState(run_id="stopped", goal="goal", max_iterations=5, status=RunStatus.INTERRUPTED),
    )
    fill_up(db)
    for args in (
        ["run", "goal", "--run-id", "fresh", "--detach", *FAST],
        ["resume", "stopped", "--detach"],
    ):
        result = await arun_cli(*args, "--db", db, env=env)
        assert result.code == 1, result
        line = one_line(result)
        assert "did not start" in line, line
        assert "database or disk is full" in line, line
        assert result.out == ""  # no run id printed as if it had started

    for run_id in ("fresh", "stopped"):
        log = worker_log_path(db, run_id)
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
        assert "database or disk is full" in log.read_text()
        shown = await acli_here("show", run_id, "--db", db, env=env)
        assert shown.code == 0, shown
        assert f"worker log: {log}" in shown.out.splitlines()
    assert (await read_run(db, "stopped")).status is RunStatus.INTERRUPTED  # never claimed
    assert (await read_run(db, "fresh")).epoch == 0


async def test_a_detached_start_that_succeeds_has_claimed_before_it_returns(
    tmp_path: Path, env: dict[str, str], reaper: Reaper
) -> None:
    db = str(tmp_path / "runs.db")
    started = await arun_cli("run", "goal", "--db", db, "--detach", "--option", "delay=60", env=env)
    assert started.code == 0, started
    run = await read_run(db, started.out.strip())  # read once, at once: no waiting
    assert run.owner is not None
    reaper.track(run.owner.pid)
    assert run.epoch == 1
    assert shown_status(run) is ShownStatus.RUNNING
    assert os.path.exists(worker_log_path(db, run.run_id))
