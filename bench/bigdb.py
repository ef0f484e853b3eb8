"""Building big databases fast: the real schema (SQLiteStore.open runs the migrations), then
one bulk transaction through plain sqlite3 with the journal and syncing off, then back to WAL.

Content looks like real use: mostly completed runs, some failed / aborted / interrupted, 20
stored ``running`` with a dead owner (shown crashed) spread over the history, events like the
loop's, and tasks with results for the newest runs (those a first screen shows).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanoagent_core.procinfo import host_name
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.sqlite import sql as schema

__all__ = ["BuildInfo", "build_database", "run_id_of"]

_STATUSES = ("completed",) * 85 + ("failed",) * 6 + ("aborted",) * 4 + ("interrupted",) * 5
_WORDS = ("survey", "draft", "measure", "compare", "review", "summarise", "triage", "plan")
_DEAD_PID = 1 << 22  # above Linux's largest pid_max: never a live process
TASKS_PER_RUN = 5
#: Runs stored ``running`` whose worker is dead (shown crashed), whatever the size: the number
#: of unfinished runs does not grow with the history.
CRASHED_RUNS = 20


@dataclass(frozen=True)
class BuildInfo:
    path: Path
    runs: int
    events: int
    seconds: float
    bytes: int


def run_id_of(number: int) -> str:
    return f"run-{number:07d}"


def _status(number: int, stride: int) -> str:
    if number % stride == stride - 1:
        return "running"
    return _STATUSES[(number * 7919) % len(_STATUSES)]


def _goal(number: int) -> str:
    a, b = _WORDS[number % len(_WORDS)], _WORDS[(number // 8) % len(_WORDS)]
    return f"{a.capitalize()} the {b} notes of batch {number}, then write a short report"


def _task_id(number: int, k: int) -> str:
    return f"t{number % 100_000:05d}{k:02d}"


def _event(kind: str, number: int, step: int) -> tuple[str, dict[str, Any]]:
    task = _task_id(number, step % TASKS_PER_RUN)
    if kind == "run_created":
        return kind, {"goal": _goal(number), "agent": "demo", "max_iterations": 50}
    if kind == "run_claimed":
        return kind, {"epoch": 1, "host": "bench-host", "pid": 4242}
    if kind == "planned":
        tasks = [{"id": _task_id(number, j), "description": f"Step {j + 1}: {_WORDS[j]} it"}
                 for j in range(TASKS_PER_RUN)]  # fmt: skip
        return kind, {"tasks": tasks}
    if kind == "task_started":
        return kind, {"task_id": task, "attempt": 1, "iteration": step + 1,
                      "description": f"Step {step + 1}: {_WORDS[step % 8]} the notes"}  # fmt: skip
    if kind == "task_done":
        return kind, {"task_id": task, "attempt": 1, "iteration": step + 1, "seconds": 0.3,
                      "result": f"step {step + 1} finished: alpha bravo cedar delta"}  # fmt: skip
    if kind == "reflected":
        return kind, {"iteration": step, "done": False, "added": [], "rejected": 0,
                      "cancelled": [], "ignored": []}  # fmt: skip
    return kind, {"reason": "reflection", "iteration": step, "tasks_done": step}


_BODY = ("task_started", "task_done") * 3 + ("reflected",)


def _kinds(count: int) -> list[str]:
    """The kinds of one run's ``count`` events, in the loop's order."""
    body = [_BODY[i % len(_BODY)] for i in range(max(0, count - 4))]
    return (["run_created", "run_claimed", "planned", *body, "run_completed"])[:count]


def build_database(path: Path, runs: int, events: int, *, tasked_runs: int = 1000) -> BuildInfo:
    """A database of ``runs`` runs and about ``events`` events (spread evenly), built in
    seconds. ``path`` must not exist yet."""
    began = time.perf_counter()
    if path.exists():
        raise FileExistsError(path)

    async def create() -> None:
        store = await SQLiteStore.open(path)
        await store.close()

    asyncio.run(create())
    now = time.time()
    span = 90 * 86400.0  # the runs were made over the last 90 days
    first = now - span
    host = host_name()
    options = json.dumps({"delay": "0.3", "tasks": str(TASKS_PER_RUN)}, sort_keys=True)
    per_run, extra = divmod(events, runs) if runs else (0, 0)
    stride = max(1, runs // CRASHED_RUNS)

    def started(number: int) -> float:
        return first + span * number / max(1, runs)

    def run_rows() -> Iterator[tuple[Any, ...]]:
        for number in range(runs):
            status = _status(number, stride)
            t0 = started(number)
            t1 = t0 + 20.0
            running = status == "running"
            done_tasks = TASKS_PER_RUN if status == "completed" else 2
            yield (
                run_id_of(number), _goal(number), 50, "demo", options,
                "executing" if status != "completed" else "done", done_tasks + 1,
                _task_id(number, done_tasks) if status != "completed" else None,
                status, t0, t1, None if running or status == "interrupted" else t1,
                host if running else None, _DEAD_PID + number if running else None,
                1.0 if running else None, 1, t1, t1 + 6 if running else None, None,
                None if status in ("completed", "running", "interrupted") else f"{status}: bench",
                f"Completed {done_tasks} task(s):" if status == "completed" else None,
                TASKS_PER_RUN, done_tasks, 0, 0, 0, None, 0,  # an empty ledger
                None, None, None, None,  # not paused, no budget
            )  # fmt: skip

    def event_rows() -> Iterator[tuple[Any, ...]]:
        for number in range(runs):
            count = per_run + (1 if number < extra else 0)
            t0 = started(number)
            run_id = run_id_of(number)
            for step, kind in enumerate(_kinds(count)):
                name, data = _event(kind, number, step // 2)
                yield (run_id, t0 + step * 0.3, name, json.dumps(data))

    def task_rows() -> Iterator[tuple[Any, ...]]:
        for number in range(max(0, runs - tasked_runs), runs):
            done = TASKS_PER_RUN if _status(number, stride) == "completed" else 2
            for k in range(TASKS_PER_RUN):
                status = "done" if k < done else "pending"
                yield (run_id_of(number), _task_id(number, k), k,
                       f"Step {k + 1}: {_WORDS[k % 8]} the notes of batch {number}", status, 5,
                       f"step {k + 1} finished: alpha bravo" if status == "done" else None,
                       1 if k <= done else 0, 0, None)  # fmt: skip

    def result_rows() -> Iterator[tuple[str, str, str]]:
        for number in range(max(0, runs - tasked_runs), runs):
            done = TASKS_PER_RUN if _status(number, stride) == "completed" else 2
            for k in range(done):
                yield run_id_of(number), _task_id(number, k), f"step {k + 1} finished: alpha"

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # nobody else has the file open yet
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -400000")
        conn.execute("BEGIN")
        marks = ", ".join("?" * len(schema.RUN_COLUMNS.split(",")))
        conn.executemany(f"INSERT INTO runs ({schema.RUN_COLUMNS}) VALUES ({marks})", run_rows())
        conn.executemany(schema.INSERT_EVENT, event_rows())
        conn.executemany(
            "INSERT INTO tasks (run_id, task_id, seq, description, status, priority, result,"
            " attempts, failures, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            task_rows(),
        )
        conn.executemany(
            "INSERT INTO results (run_id, task_id, result) VALUES (?, ?, ?)", result_rows()
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
        (stored,) = conn.execute("SELECT count(*) FROM events").fetchone()
    finally:
        conn.close()
    return BuildInfo(path, runs, int(stored), time.perf_counter() - began, path.stat().st_size)
