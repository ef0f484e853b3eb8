"""Section 7: retention. ``nanoagent prune`` deletes 90,000 of 100,000 runs (bench/bigdb.py
builds the file) while a worker process commits steps on the same file; the worker's step
commit latency during the prune against the same worker's before it, in the same run; the
file's size before and after; and that everything not pruned is byte for byte as it was.

``python -m bench.prune worker DB RUN_ID``: the worker: creates and claims RUN_ID, prints
``ready``, commits steps (one task done, its result, one event; 2 ms apart) until a line on
stdin, then prints one JSON list of [start (time.monotonic()), seconds] per commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.bigdb import build_database
from bench.common import Config, Goal, SectionResult, Stat, child_env, fmt, nanoagent_command
from nanoagent_core.models import Owner, Phase, RunState, Task, TaskStatus, validated
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SQLiteStore

__all__ = ["run"]

FINISHED = ("completed", "aborted", "failed")
WORKER_RUN = "bench-prune-worker"
GOAL_P99_MS = 100.0


def _step(i: int) -> Step:
    tid = f"t{i:06d}"
    return Step(
        phase=Phase.EXECUTING,
        iteration=i + 1,
        current_task_id=tid,
        tasks=(Task(id=tid, description=f"task {i}", status=TaskStatus.DONE, attempts=1),),
        results={tid: f"result {i}"},
        events=(NewEvent(kind="task_done", data={"task_id": tid, "i": i}),),
    )


async def _worker(db: str, run_id: str) -> list[tuple[float, float]]:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    store = await SQLiteStore.open(db)
    samples: list[tuple[float, float]] = []
    try:
        await store.create_run(
            validated(RunState, run_id=run_id, goal="bench", max_iterations=10_000)
        )
        owner: Owner = current_owner()
        run = await store.claim_run(run_id, owner, expected_epoch=0, lease_seconds=60)
        print("ready", flush=True)
        i = 0
        while not stop.is_set():
            began = time.monotonic()
            await store.commit_step(run_id, _step(i), epoch=run.epoch)
            samples.append((began, time.monotonic() - began))
            i += 1
            await asyncio.sleep(0.002)
    finally:
        await store.close()
    return samples


def _digest(db: Path, mid: float, exclude: str) -> tuple[str, int]:
    """A hash of every row of the runs that must stay (and their tasks, results, events)."""
    conn = sqlite3.connect(db)
    try:
        marks = ", ".join("?" * len(FINISHED))
        keep = (
            f"SELECT run_id FROM runs WHERE NOT (status IN ({marks}) AND finished_at < ?)"
            " AND run_id != ?"
        )
        params = (*FINISHED, mid, exclude)
        digest = hashlib.sha256()
        kept = 0
        for table, order in (
            ("runs", "run_id"),
            ("tasks", "run_id, task_id"),
            ("results", "run_id, task_id"),
            ("events", "id"),
        ):
            query = f"SELECT * FROM {table} WHERE run_id IN ({keep}) ORDER BY {order}"
            for row in conn.execute(query, params):
                digest.update(repr(row).encode())
                kept += table == "runs"
        return digest.hexdigest(), kept
    finally:
        conn.close()


def _cutoff(db: Path, prune: int) -> float:
    """A finished_at between the ``prune``-th and the next oldest finished runs."""
    conn = sqlite3.connect(db)
    try:
        marks = ", ".join("?" * len(FINISHED))
        rows = conn.execute(
            f"SELECT finished_at FROM runs WHERE status IN ({marks}) AND finished_at IS NOT NULL"
            " ORDER BY finished_at LIMIT 2 OFFSET ?",
            (*FINISHED, prune - 1),
        ).fetchall()
    finally:
        conn.close()
    return (rows[0][0] + rows[1][0]) / 2


def _size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def run(cfg: Config, workdir: Path) -> SectionResult:
    sizes = {"full": (100_000, 90_000), "quick": (10_000, 9_000)}
    total, prune = sizes.get(cfg.label, (2_000, 1_800))
    baseline = 5.0 if cfg.label == "full" else 1.0
    db = workdir / "prune.db"
    if db.exists():
        db.unlink()
    build_database(db, total, total * 10, tasked_runs=total // 5)
    mid = _cutoff(db, prune)
    before_digest, kept = _digest(db, mid, WORKER_RUN)
    size_before = _size(db)

    worker = subprocess.Popen(
        [sys.executable, "-m", "bench.prune", "worker", str(db), WORKER_RUN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert worker.stdin is not None
    assert worker.stdout is not None
    try:
        assert worker.stdout.readline().strip() == "ready"
        base_from = time.monotonic()
        time.sleep(baseline)  # the worker alone: the baseline window
        older_than = max(0, math.floor(time.time() - mid))
        prune_from = time.monotonic()
        done = subprocess.run(
            nanoagent_command("prune", "--db", str(db), "--older-than", f"{older_than}s"),
            capture_output=True,
            text=True,
            env=child_env(),
            check=False,
        )
        prune_to = time.monotonic()
        time.sleep(1.0)
        worker.stdin.write("stop\n")
        worker.stdin.flush()
        out, _ = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    if done.returncode != 0:
        raise RuntimeError(f"prune failed ({done.returncode}): {done.stderr.strip()}")
    samples: list[list[float]] = json.loads(out.strip().splitlines()[-1])
    base = Stat.of(s * 1000 for t, s in samples if base_from <= t < prune_from)
    during = Stat.of(s * 1000 for t, s in samples if prune_from <= t <= prune_to)
    size_after = _size(db)
    after_digest, kept_after = _digest(db, mid, WORKER_RUN)
    conn = sqlite3.connect(db)
    try:
        (left,) = conn.execute(
            "SELECT count(*) FROM runs WHERE run_id != ?", (WORKER_RUN,)
        ).fetchone()
        (worker_status,) = conn.execute(
            "SELECT status FROM runs WHERE run_id = ?", (WORKER_RUN,)
        ).fetchone()
    finally:
        conn.close()
    removed = total - int(left)
    intact = after_digest == before_digest and kept_after == kept == left
    p99_base, p99_during = base.quantile(0.99), during.quantile(0.99)
    rows = [
        ["runs pruned (of the database's)", "runs", f"{removed:,} of {total:,}", "", ""],
        ["prune, whole command", "s", fmt(prune_to - prune_from), "", ""],
        ["worker step commit, alone: p50 / p99 / max", "ms", fmt(base.median),
         fmt(p99_base), fmt(base.high)],
        ["worker step commit, during prune: p50 / p99 / max", "ms", fmt(during.median),
         fmt(p99_during), fmt(during.high)],
        ["worker steps committed alone / during prune", "steps", f"{base.n:,}", f"{during.n:,}",
         ""],
        ["file (database + WAL) before / after", "MB", fmt(size_before / 1e6),
         fmt(size_after / 1e6), ""],
        ["the rest intact (rows of 10% kept, hashed before/after)", "", str(intact), "", ""],
    ]  # fmt: skip
    return SectionResult(
        title="7. Retention: prune while a worker commits (SQLite, real processes)",
        headers=["what", "unit", "value / p50", "p99", "max"],
        rows=rows,
        goals=[
            Goal(
                "7. pruning 90,000 of 100,000 runs keeps a concurrent worker's p99 step < 100 ms",
                f"p99 < {GOAL_P99_MS:g} ms",
                f"{fmt(p99_during)} ms during ({fmt(p99_base)} ms alone)",
                p99_during < GOAL_P99_MS,
            ),
            Goal(
                "7. the rest intact, the file shrinks",
                "same rows; smaller file",
                f"intact={intact}; {fmt(size_before / 1e6)} -> {fmt(size_after / 1e6)} MB",
                intact and size_after < size_before,
            ),
        ],
        notes=[
            f"prune printed: {' | '.join(done.stdout.strip().splitlines())}",
            f"worker's run ended the section {worker_status} (never touched by prune).",
            "The worker is a separate process committing one step (a task, its result, an"
            " event) every ~2 ms through SQLiteStore.commit_step; 'during' is every commit that"
            " began between the prune command's start and its exit (space reclaim included).",
        ],
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        got = asyncio.run(_worker(sys.argv[2], sys.argv[3]))
        print(json.dumps(got), flush=True)
