"""Where a commit of section 1's loop goes (SQLite, synchronous NORMAL): the figures of the
"Profile of section 1" part of bench/RESULTS.md.

``uv run python -m bench.profile_step`` drives the same workload as section 1's loop sample
(20 runs x 50 no-op tasks, one after another, on a fresh file) three ways in one process:

1. plain: no instrumentation (the reference rate);
2. timed: the store's plumbing wrapped with perf_counter marks (nothing else changes), split
   into: the loop's own Python, building the step's parameters, the hand-off to the connection's
   thread, BEGIN, the statements, decoding the returned row, COMMIT, and the hand-back;
3. cProfile of the event loop's thread (``--cprofile N`` prints the top N functions).

It also times an empty round trip through the connection's thread (the bare cost of a hop) and a
bare ``commit_step`` without the loop. Run it under ``py-spy record`` to see the store's
thread too. Figures vary with the machine's load: compare them within one run."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.step_cost import floor_steps_per_s, loop_sample
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.sqlite import ops as ops_module
from nanoagent_core.sqlite import sql as sql_module
from nanoagent_core.sqlite import store as store_module

T = TypeVar("T")
TASKS = 50
RUNS = 20

_marks: dict[str, list[float]] = defaultdict(list)
#: seconds per statement kind (the name of its constant in nanoagent_core/sqlite/sql.py)
_statements: dict[str, float] = defaultdict(float)
_statement_counts: dict[str, int] = defaultdict(int)
_SQL_NAMES = {
    value: name
    for name, value in vars(sql_module).items()
    if isinstance(value, str) and name.isupper()
}


class _TimedConnection:
    """Passes execute/executemany through to the connection, timing each by statement."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _timed(self, method: Callable[..., Any], statement: str, *args: Any) -> Any:
        began = time.perf_counter()
        cursor = method(statement, *args)
        name = _SQL_NAMES.get(statement, statement.split(" ", 1)[0])
        _statements[name] += time.perf_counter() - began
        _statement_counts[name] += 1
        return cursor

    def execute(self, statement: str, *args: Any) -> Any:
        return self._timed(self._conn.execute, statement, *args)

    def executemany(self, statement: str, *args: Any) -> Any:
        return self._timed(self._conn.executemany, statement, *args)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction


def _install_timers() -> Callable[[], None]:
    """Wrap the store's plumbing with timers; return a function that undoes it."""
    original_commit = SQLiteStore.commit_step
    original_write = SQLiteStore._write  # pyright: ignore[reportPrivateUsage]
    original_txn = store_module.in_transaction
    original_now = store_module.write_now
    original_decode = ops_module.run_from_row
    state: dict[str, float] = {}

    async def commit_step(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        state["commit_in"] = time.perf_counter()
        state["in_commit"] = 1.0
        try:
            out = await original_commit(self, *args, **kwargs)
        finally:
            state["in_commit"] = 0.0
        end = time.perf_counter()
        _marks["commit_total"].append(end - state["commit_in"])
        _marks["hand_back"].append(end - state["job_out"])
        return out

    async def write(self: SQLiteStore, fn: Callable[..., T], *args: Any) -> T:
        state["call_in"] = time.perf_counter()
        if state.get("in_commit"):
            _marks["params"].append(state["call_in"] - state["commit_in"])
        return await original_write(self, fn, *args)

    def in_transaction(conn: sqlite3.Connection, begin: str, fn: Any, *args: Any) -> Any:
        if not state.get("in_commit"):
            return original_txn(conn, begin, fn, *args)
        return timed_txn(conn, lambda: conn.execute(begin), fn, *args)

    def write_now(conn: sqlite3.Connection, fn: Any, *args: Any) -> Any:
        if not state.get("in_commit"):
            return original_now(conn, fn, *args)
        _marks["here"].append(1.0)  # no contention in this bench: the lock is free
        return timed_txn(conn, lambda: conn.execute("BEGIN IMMEDIATE"), fn, *args)

    def timed_txn(
        conn: sqlite3.Connection, begin: Callable[[], object], fn: Any, *args: Any
    ) -> Any:
        began = time.perf_counter()
        _marks["hand_off"].append(began - state["call_in"])
        begin()
        t1 = time.perf_counter()
        state["decode"] = 0.0
        try:
            out = fn(_TimedConnection(conn), *args)
            t2 = time.perf_counter()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        t3 = time.perf_counter()
        _marks["begin"].append(t1 - began)
        _marks["statements"].append(t2 - t1 - state["decode"])
        _marks["decode"].append(state["decode"])
        _marks["commit_sql"].append(t3 - t2)
        state["job_out"] = time.perf_counter()
        return out

    def run_from_row(row: Any) -> Any:
        began = time.perf_counter()
        out = original_decode(row)
        state["decode"] = state.get("decode", 0.0) + time.perf_counter() - began
        return out

    SQLiteStore.commit_step = commit_step  # type: ignore[method-assign]
    SQLiteStore._write = write  # type: ignore[method-assign]  # pyright: ignore[reportPrivateUsage]
    store_module.in_transaction = in_transaction
    store_module.write_now = write_now
    ops_module.run_from_row = run_from_row

    def undo() -> None:
        SQLiteStore.commit_step = original_commit  # type: ignore[method-assign]
        SQLiteStore._write = original_write  # type: ignore[method-assign]  # pyright: ignore[reportPrivateUsage]
        store_module.in_transaction = original_txn
        store_module.write_now = original_now
        ops_module.run_from_row = original_decode

    return undo


async def _empty_hops(path: Path, count: int) -> float:
    """Seconds per empty round trip through the connection's thread (no SQL at all)."""
    store = await SQLiteStore.open(path)
    try:
        db: Any = store._db  # pyright: ignore[reportPrivateUsage]  # its ConnectionThread
        began = time.perf_counter()
        for _ in range(count):
            await db.run(lambda conn: None)
        return (time.perf_counter() - began) / count
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_step", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="plain/timed pairs")
    parser.add_argument("--cprofile", type=int, default=30, metavar="N", help="top N (0: none)")
    parser.add_argument("--plain-only", action="store_true", help="for py-spy: no timers")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nanoagent-profile-"))
    counter = 0

    def fresh() -> Path:
        nonlocal counter
        counter += 1
        return work / f"p{counter}.db"

    if args.plain_only:
        for _ in range(args.rounds):
            sample = asyncio.run(loop_sample(fresh(), "NORMAL", TASKS, RUNS))
            print(f"plain: {1e6 / sample.steps_per_s:.0f} us/commit")
        return 0
    plain: list[float] = []
    timed: list[float] = []
    hops: list[float] = []
    floor: list[float] = []
    for _ in range(args.rounds):
        floor.append(1e6 / floor_steps_per_s(fresh(), "NORMAL", 1000))
        sample = asyncio.run(loop_sample(fresh(), "NORMAL", TASKS, RUNS))
        plain.append(1e6 * sample.seconds / sample.steps)
        hops.append(1e6 * asyncio.run(_empty_hops(fresh(), 2000)))
        undo = _install_timers()
        try:
            sample = asyncio.run(loop_sample(fresh(), "NORMAL", TASKS, RUNS))
        finally:
            undo()
        timed.append(1e6 * sample.seconds / sample.steps)
    commits = len(_marks["commit_total"])
    loop_us = statistics.median(timed) - 1e6 * sum(_marks["commit_total"]) / commits
    print(f"commits timed: {commits} over {args.rounds} rounds of {RUNS} runs x {TASKS} tasks")
    print(f"of which run on the event loop's thread (no hop): {len(_marks['here'])}")
    print(f"plain loop: {statistics.median(plain):.0f} us/commit (median of rounds)")
    print(f"timed loop: {statistics.median(timed):.0f} us/commit (timers included)")
    print(f"floor (plain sqlite3, 1 txn per step): {statistics.median(floor):.0f} us/step")
    print(f"empty hop through the connection's thread: {statistics.median(hops):.0f} us")
    print("per commit (mean / median us):")
    print(f"  {'loop Python (timed loop - commit_step)':44s} {loop_us:8.1f}")
    for key, what in [
        ("commit_total", "commit_step, await to resume"),
        ("params", "  build parameters (event loop)"),
        ("hand_off", "  hand-off: submit -> job starts (on thread)"),
        ("begin", "  BEGIN IMMEDIATE"),
        ("statements", "  statements (fence, tasks, results, events, run)"),
        ("decode", "  decode the returned run row"),
        ("commit_sql", "  COMMIT"),
        ("hand_back", "  hand-back: job ends -> coroutine resumes"),
    ]:
        mean, median = (1e6 * statistics.fmean(_marks[key]), 1e6 * statistics.median(_marks[key]))
        print(f"  {what:44s} {mean:8.1f} {median:8.1f}")
    print("statements inside the commit's transaction (us per commit, count per commit):")
    for name, seconds in sorted(_statements.items(), key=lambda item: -item[1]):
        count = _statement_counts[name] / commits
        print(f"  {name:44s} {1e6 * seconds / commits:8.1f} {count:8.2f}")
    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.enable()
        sample = asyncio.run(loop_sample(fresh(), "NORMAL", TASKS, RUNS))
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(args.cprofile)
        print(f"cProfile of the event loop's thread ({sample.steps} commits):")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
