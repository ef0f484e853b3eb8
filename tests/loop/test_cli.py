"""The ``nanoagent`` command, as a person runs it: bad input (exit 2, one line on stderr, no
traceback, nothing written), exit codes of unknown runs, ``--detach``, the fields of
``list --json`` and ``show --json``, and where the database lives."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from loopkit import (
    Reaper,
    Result,
    acli,
    acli_here,
    ashow_json,
    cli_here,
    gather_all,
    option_args,
    read_run,
    wait_until,
)

from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.paths import resolve_db_location
from nanoagent_core.procinfo import process_start_time
from nanoagent_core.worker import FAULT_KILL_AFTER_COMMIT

QUICK = {"tasks": "2", "followups": "0", "delay": "0"}

LIST_FIELDS = [
    "run_id", "goal", "agent", "status", "phase", "iteration", "max_iterations", "tasks_total",
    "tasks_done", "current_task_id", "abort_requested", "created_at", "updated_at",
    "heartbeat_at", "worker_host", "worker_pid", "damaged",
    "requests", "tokens_in", "tokens_out", "cost_usd", "cost_complete",
    "pause_reason", "pause_detail", "max_tokens", "max_cost_usd",
]  # fmt: skip
SHOW_FIELDS = [*LIST_FIELDS, "tasks", "results", "events", "result", "error", "calls"]
TASK_FIELDS = {"id", "description", "status", "priority", "attempts", "result"}


@dataclass
class Case:
    name: str
    args: list[str]
    says: str  #: a fragment the one line on stderr must hold
    env: dict[str, str] = field(default_factory=dict[str, str])
    code: int = 2


def bad_input_cases(tmp_path: Path) -> tuple[list[Case], dict[str, Path]]:
    fresh = str(tmp_path / "fresh" / "runs.db")  # never created by a refused command
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n")
    other_app = tmp_path / "other.sqlite"
    with sqlite3.connect(other_app) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
    conn.close()
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = str(tmp_path / "outside.db")
    guard = {"NANOAGENT_ALLOWED_DIR": str(allowed)}
    db = ["--db", fresh]
    cases = [
        Case("empty goal", ["run", "", *db], "goal"),
        Case("blank goal", ["run", "  \n ", *db], "goal"),
        Case("goal too long", ["run", "x" * 10_001, *db], "goal"),
        Case("bad run id", ["run", "g", "--run-id", "no spaces", *db], "invalid run id"),
        Case("run id too long", ["run", "g", "--run-id", "r" * 65, *db], "invalid run id"),
        Case("path as run id (show)", ["show", "../etc/passwd", *db], "invalid run id"),
        Case("bad run id (resume)", ["resume", "a;b", *db], "invalid run id"),
        Case("bad run id (abort)", ["abort", "", *db], "invalid run id"),
        Case("option without =", ["run", "g", "--option", "tasks", *db], "KEY=VALUE"),
        Case("option without key", ["run", "g", "--option", "=3", *db], "KEY=VALUE"),
        Case("unknown demo option", ["run", "g", "--option", "colour=red", *db], "'colour'"),
        Case("malformed demo value", ["run", "g", "--option", "tasks=lots", *db], "tasks"),
        Case("out-of-range value", ["run", "g", "--option", "delay=-1", *db], "delay"),
        Case("bad fail list", ["run", "g", "--option", "fail=2,x", *db], "fail"),
        Case("unknown agent", ["run", "g", "--agent", "nope", *db], "unknown agent 'nope'"),
        Case("zero iterations", ["run", "g", "--max-iterations", "0", *db], "max-iterations"),
        Case("iterations not a number", ["run", "g", "--max-iterations", "x", *db], "max-iter"),
        Case("zero heartbeat", ["run", "g", "--heartbeat", "0", *db], "heartbeat"),
        Case("nan heartbeat", ["resume", "r", "--heartbeat", "nan", *db], "heartbeat"),
        Case("unknown flag", ["run", "g", "--colour", "red", *db], "--colour"),
        Case("unknown command", ["frobnicate", *db], "frobnicate"),
        Case("bad status filter", ["list", "--status", "sleeping", *db], "sleeping"),
        Case("text file (run)", ["run", "g", "--db", str(text)], "not a nanoagent database"),
        Case("text file (list)", ["list", "--json", "--db", str(text)], "not a nanoagent"),
        Case("text file (show)", ["show", "r", "--db", str(text)], "not a nanoagent database"),
        Case("text file (resume)", ["resume", "r", "--db", str(text)], "not a nanoagent"),
        Case("text file (abort)", ["abort", "r", "--db", str(text)], "not a nanoagent"),
        Case("other app's SQLite", ["run", "g", "--db", str(other_app)], "another application"),
        Case("directory as db", ["list", "--db", str(tmp_path)], "directory"),
        Case("outside allowed dir", ["run", "g", "--db", outside], "outside", guard),
        Case(
            "NANOAGENT_DB outside",
            ["list"],
            "outside",
            {**guard, "NANOAGENT_DB": outside},
        ),
        Case(
            "escape by ..",
            ["run", "g", "--db", f"{allowed}/../outside.db"],
            "outside",
            guard,
        ),
    ]
    return cases, {"fresh": Path(fresh), "text": text, "outside": Path(outside)}


#: Cases also run through the console script in a process of its own (the rest run the same
#: argv in this process): argparse's refusal, a refusal by the command, one by a store, and
#: one from the environment the process starts with.
IN_A_PROCESS = {"unknown flag", "empty goal", "text file (list)", "NANOAGENT_DB outside"}


async def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    cases, paths = bad_input_cases(tmp_path)
    assert {case.name for case in cases} >= IN_A_PROCESS
    text_before = paths["text"].read_bytes()

    async def attempt(case: Case) -> Result:
        run = acli if case.name in IN_A_PROCESS else acli_here
        return await run(*case.args, env={**env, **case.env})

    results = await gather_all(*(attempt(case) for case in cases))
    problems: list[str] = []
    for case, result in zip(cases, results, strict=True):
        lines = result.err.splitlines()
        if (
            result.code != case.code
            or len(lines) != 1
            or "Traceback" in result.err
            or not lines[0].startswith("nanoagent: ")
            or case.says not in lines[0]
            or result.out
        ):
            problems.append(f"{case.name}: exit {result.code}, stderr {result.err!r}")
    assert not problems, "\n".join(problems)
    # nothing was created or changed by a refused command
    assert not paths["fresh"].exists()
    assert not paths["fresh"].parent.exists()
    assert not paths["outside"].exists()
    assert paths["text"].read_bytes() == text_before
    assert not list(tmp_path.glob("notes.txt-*"))  # no -wal / -shm beside it


async def test_unknown_runs_exit_3(db: str, env: dict[str, str]) -> None:
    missing = str(Path(db).with_name("missing.db"))
    done = await acli_here("run", "g", "--run-id", "there", "--db", db, *option_args(QUICK),
                           env=env)  # fmt: skip
    assert done.code == 0, done
    results = await gather_all(
        acli("show", "nosuch", "--db", db, env=env),  # the exit status of the process too
        acli_here("resume", "nosuch", "--db", db, env=env),
        acli_here("abort", "nosuch", "--db", db, env=env),
        acli_here("resume", "nosuch", "--db", missing, env=env),
        acli_here("show", "nosuch", "--json", "--db", missing, env=env),
    )
    for result in results:
        assert result.code == 3, result
        assert len(result.err.splitlines()) == 1, result
        assert "nosuch" in result.err
    assert not Path(missing).exists()
    again = await acli_here("resume", "there", "--db", db, env=env)
    assert again.code == 0, again  # a completed run: resume returns at once
    assert "completed already" in again.out


async def test_detach_prints_the_run_id_and_the_run_completes_in_the_background(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    # 3 bodies of 5 s: the worker lives >= 15 s of wall time after its claim, so its session
    # is checked on a live process (no `if` that could skip the check), however loaded
    options = {"tasks": "3", "followups": "0", "delay": "5"}
    started = await acli("run", "in the background", "--detach", "--db", db,
                         *option_args(options), env=env)  # fmt: skip
    assert started.code == 0, started
    run_id = started.out.strip()
    assert started.out == f"{run_id}\n"
    assert started.err == ""

    async def probe() -> RunState:
        return await read_run(db, run_id)

    # the command has exited; its worker holds the run, in a session of its own
    running = await wait_until(probe, lambda r: r.owner is not None, timeout=60, what="claimed")
    assert running.owner is not None
    worker = running.owner.pid
    reaper.track(worker)
    assert running.status is RunStatus.RUNNING
    assert process_start_time(worker) is not None
    assert os.getsid(worker) == worker
    assert os.getsid(worker) != os.getsid(0)
    final = await wait_until(
        probe, lambda r: r.status is RunStatus.COMPLETED, timeout=120, what="completed"
    )
    assert (final.tasks_done, final.tasks_total) == (3, 3)
    doc = await ashow_json(db, run_id)
    assert [t["status"] for t in doc["tasks"]] == ["done"] * 3


async def test_list_and_show_json_fields(db: str, env: dict[str, str], tmp_path: Path) -> None:
    crash = {**env, FAULT_KILL_AFTER_COMMIT: "2"}
    done, crashed = await gather_all(
        acli_here("run", "finish me", "--run-id", "done", "--db", db, *option_args(QUICK), env=env),
        acli("run", "crash me", "--run-id", "crashed", "--db", db, *option_args(QUICK), env=crash),
    )
    assert done.code == 0, done
    assert crashed.code == -9, crashed

    listed = await acli_here("list", "--json", "--db", db, env=env)
    rows = json.loads(listed.out)
    assert listed.code == 0
    assert isinstance(rows, list)
    assert {row["run_id"]: row["status"] for row in rows} == {
        "done": "completed",
        "crashed": "crashed",
    }
    for row in rows:
        assert list(row) == LIST_FIELDS
        assert isinstance(row["abort_requested"], bool)
        assert isinstance(row["iteration"], int)
    crashed_row = next(row for row in rows if row["run_id"] == "crashed")
    assert crashed_row["phase"] == "executing"
    assert crashed_row["current_task_id"] is not None
    assert isinstance(crashed_row["worker_pid"], int)
    assert (crashed_row["tasks_total"], crashed_row["tasks_done"]) == (2, 1)

    only_crashed = await acli_here("list", "--json", "--status", "crashed", "--db", db, env=env)
    assert [row["run_id"] for row in json.loads(only_crashed.out)] == ["crashed"]
    only_running = await acli_here("list", "--json", "--status", "running", "--db", db, env=env)
    assert json.loads(only_running.out) == []

    shown = await acli_here("show", "done", "--json", "--db", db, env=env)
    doc = json.loads(shown.out)
    assert list(doc) == SHOW_FIELDS
    assert {k: doc[k] for k in LIST_FIELDS} == next(r for r in rows if r["run_id"] == "done")
    assert len(doc["tasks"]) == 2
    for task in doc["tasks"]:
        assert set(task) >= TASK_FIELDS, task
    assert doc["results"] == {t["id"]: t["result"] for t in doc["tasks"]}
    assert doc["events"]
    for event in doc["events"]:
        assert list(event) == ["id", "ts", "kind", "data"]
    ids = [event["id"] for event in doc["events"]]
    assert ids == sorted(ids)
    assert doc["result"].startswith("Completed 2 task(s):")
    assert doc["error"] is None


def test_database_location_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name in ("NANOAGENT_DB", "NANOAGENT_ALLOWED_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/z")
    assert resolve_db_location(None) == "/z/nanoagent/nanoagent.db"
    monkeypatch.setenv("NANOAGENT_DB", "/y/b.db")
    assert resolve_db_location(None) == "/y/b.db"
    assert resolve_db_location("/x/a.db") == "/x/a.db"
    monkeypatch.delenv("NANOAGENT_DB")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert resolve_db_location(None) == str(home / ".local/share/nanoagent/nanoagent.db")
    monkeypatch.setenv("XDG_DATA_HOME", "")  # set but empty counts as unset
    assert resolve_db_location(None) == str(home / ".local/share/nanoagent/nanoagent.db")
    assert resolve_db_location("~/runs.db") == str(home / "runs.db")
    monkeypatch.setenv("NANOAGENT_ALLOWED_DIR", str(home))
    assert resolve_db_location(":memory:") == ":memory:"


async def test_database_location_through_the_command(tmp_path: Path, env: dict[str, str]) -> None:
    home, xdg = Path(env["HOME"]), Path(env["XDG_DATA_HOME"])
    explicit, from_env = tmp_path / "explicit.db", tmp_path / "from-env.db"
    runs = {
        "by-flag": (["--db", str(explicit)], {"NANOAGENT_DB": str(from_env)}),
        "by-env": ([], {"NANOAGENT_DB": str(from_env)}),
        "by-xdg": ([], {}),
        "by-home": ([], {"XDG_DATA_HOME": ""}),
    }

    async def start(run_id: str, flags: list[str], extra: dict[str, str]) -> Result:
        # where the location comes from the environment, the process starts with it
        run = acli_here if flags else acli
        return await run(
            "run", "where", "--run-id", run_id, *flags, *option_args(QUICK), env={**env, **extra}
        )

    results = await gather_all(*(start(k, *v) for k, v in runs.items()))
    assert [r.code for r in results] == [0, 0, 0, 0], results
    expected = {
        "by-flag": explicit,
        "by-env": from_env,
        "by-xdg": xdg / "nanoagent" / "nanoagent.db",
        "by-home": home / ".local" / "share" / "nanoagent" / "nanoagent.db",
    }
    for run_id, path in expected.items():
        assert path.exists(), run_id
        listing = cli_here("list", "--json", "--db", str(path), env=env)
        assert [row["run_id"] for row in json.loads(listing.out)] == [run_id]


@pytest.mark.parametrize("where", ["inside", "nested"])
def test_allowed_dir_admits_paths_inside_it(
    tmp_path: Path, env: dict[str, str], where: str
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    target = allowed / "runs.db" if where == "inside" else allowed / "a" / "b" / "runs.db"
    guarded = {**env, "NANOAGENT_ALLOWED_DIR": str(allowed)}
    result = cli_here("run", "g", "--db", str(target), *option_args(QUICK), env=guarded)
    assert result.code == 0, result
    assert target.exists()
