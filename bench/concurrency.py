"""2. Concurrency: N worker processes x M no-op tasks each, all on one database file; then
the same on PostgreSQL (one throwaway schema per sample).

Each process claims its own run before the clock starts; then all are released at once.
Throughput is all tasks over (last worker's end - release). An error is any worker that
raised (e.g. "database is locked", a lost lease), exited non-zero, or whose run did not
complete with exactly M tasks done.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import pg
from bench.agent import AGENT_NAME
from bench.common import (
    Config,
    Goal,
    SectionResult,
    Stat,
    child_env,
    fmt,
    fmt_stat,
    paired_ratios,
)
from bench.common import python_command as py
from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.stores import open_store

__all__ = ["ConcurrencySample", "concurrency_sample", "pg_samples", "run"]


@dataclass(frozen=True)
class ConcurrencySample:
    tasks: int
    seconds: float  #: from the release to the last worker's end
    errors: int
    messages: tuple[str, ...]
    startup: float  #: from spawning to every worker ready (imports, open, claim)

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.seconds if self.seconds > 0 else 0.0


async def _create_runs(db: Path | str, ids: list[str], tasks: int) -> None:
    store = await open_store(str(db))
    try:
        for run_id in ids:
            await store.create_run(
                RunState(run_id=run_id, goal="concurrency", max_iterations=tasks, agent=AGENT_NAME)
            )
    finally:
        await store.close()


async def _check_runs(db: Path | str, ids: list[str], tasks: int) -> list[str]:
    store = await open_store(str(db))
    problems: list[str] = []
    try:
        for run_id in ids:
            run = await store.get_run(run_id)
            if run.status is not RunStatus.COMPLETED or run.tasks_done != tasks:
                problems.append(f"{run_id}: {run.status}, {run.tasks_done}/{tasks} tasks")
    finally:
        await store.close()
    return problems


def concurrency_sample(
    db: Path | str, procs: int, tasks: int, timeout: float = 300.0
) -> ConcurrencySample:
    """``procs`` workers on ``db`` (a SQLite file or a PostgreSQL URL with its schema)."""
    ids = [f"conc-{n:02d}" for n in range(procs)]
    asyncio.run(_create_runs(db, ids, tasks))
    env = child_env()
    spawned = time.monotonic()
    children = [
        subprocess.Popen(
            py("bench.worker_proc", str(db), run_id, str(tasks)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for run_id in ids
    ]
    messages: list[str] = []
    errors = 0
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "ready":
                messages.append(f"worker did not start: {line!r}")
        startup = time.monotonic() - spawned
        released = time.monotonic()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        ends: list[float] = []
        for child in children:
            out, err = child.communicate(timeout=timeout)
            lines = [x for x in out.splitlines() if x.startswith("{")]
            if child.returncode != 0 or not lines:
                errors += 1
                messages.append(f"exit {child.returncode}: {err.strip()[-300:]}")
                continue
            report = json.loads(lines[-1])
            if report.get("error") or report.get("status") != "completed":
                errors += 1
                messages.append(f"{report.get('run_id')}: {report.get('error')}")
            if "end" in report:
                ends.append(float(report["end"]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    problems = asyncio.run(_check_runs(db, ids, tasks))
    errors += len(problems) if not errors else 0
    messages += problems
    seconds = (max(ends) - released) if ends else float("nan")
    return ConcurrencySample(procs * tasks, seconds, errors, tuple(messages), startup)


def pg_samples(cfg: Config, url: str) -> tuple[list[ConcurrencySample], list[ConcurrencySample]]:
    """(N processes, 1 process) samples on PostgreSQL, each on a fresh throwaway schema."""
    samples: list[ConcurrencySample] = []
    singles: list[ConcurrencySample] = []
    for n in range(cfg.pg_conc_repeats):
        with pg.throwaway_schema(url, f"single{n}") as location:
            singles.append(concurrency_sample(location, 1, cfg.tasks_per_proc))
        with pg.throwaway_schema(url, f"conc{n}") as location:
            samples.append(concurrency_sample(location, cfg.procs, cfg.tasks_per_proc))
    return samples, singles


def _rows(
    label: str, samples: list[ConcurrencySample], singles: list[ConcurrencySample], tasks: int
) -> tuple[list[list[str]], dict[str, Stat]]:
    rate = Stat.of(s.tasks_per_s for s in samples)
    errors = Stat.of(s.errors for s in samples)
    wall = Stat.of(s.seconds for s in samples)
    startup = Stat.of(s.startup for s in samples)
    single = Stat.of(s.tasks_per_s for s in singles)
    ratio = paired_ratios([s.tasks_per_s for s in samples], [s.tasks_per_s for s in singles])
    store = label.split(":", 1)[0]
    rows = [
        [label, "tasks/s (all processes)", *fmt_stat(rate)],
        [label, "seconds, release to last end", *fmt_stat(wall)],
        [label, "errors per sample", *fmt_stat(errors)],
        [label, "seconds to start and claim (not timed)", *fmt_stat(startup)],
        [f"{store}: baseline, 1 process x {tasks} tasks", "tasks/s", *fmt_stat(single)],
        [f"{store}: N processes / 1 process", "tasks/s ratio", *fmt_stat(ratio)],
    ]
    data = {"tasks_per_s": rate, "errors": errors, "single_tasks_per_s": single, "ratio": ratio}
    return rows, data


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    samples: list[ConcurrencySample] = []
    singles: list[ConcurrencySample] = []  # the baseline: one process, same run length
    for n in range(cfg.conc_repeats):
        singles.append(concurrency_sample(workdir / f"single-{n}.db", 1, cfg.tasks_per_proc))
        samples.append(concurrency_sample(workdir / f"conc-{n}.db", cfg.procs, cfg.tasks_per_proc))
    total_errors = sum(s.errors for s in samples) + sum(s.errors for s in singles)
    shape = f"{cfg.procs} processes x {cfg.tasks_per_proc} tasks"
    rows, data = _rows(f"SQLite: {shape}, one file (NORMAL)", samples, singles, cfg.tasks_per_proc)
    rate = data["tasks_per_s"]
    notes = [
        f"SQLite: errors over all {len(samples) + len(singles)} samples: {total_errors}",
        "SQLite has one writer at a time: processes queue for the write lock (BEGIN"
        " IMMEDIATE, busy_timeout 10 s); on 2 cores the total cannot exceed about one"
        " process's rate plus the Python work that overlaps.",
    ]
    for sample in [*samples, *singles]:
        notes += [f"error: {m}" for m in sample.messages[:5]]
    goals = [
        Goal(
            "2. concurrency errors",
            "0 errors",
            f"{total_errors} errors; {fmt(rate.median)} tasks/s",
            total_errors == 0,
        )
    ]
    pg_label = f"PostgreSQL: {shape}, one schema"
    skipped = pg.skip_reason(cfg.pg_url)
    if skipped is None and cfg.pg_url is not None and cfg.pg_conc_repeats > 0:
        pg_conc, pg_single = pg_samples(cfg, cfg.pg_url)
        pg_table, pg_data = _rows(pg_label, pg_conc, pg_single, cfg.tasks_per_proc)
        rows += pg_table
        data.update({f"pg_{key}": stat for key, stat in pg_data.items()})
        pg_errors = sum(s.errors for s in pg_conc) + sum(s.errors for s in pg_single)
        notes += [
            f"PostgreSQL: errors over all {len(pg_conc) + len(pg_single)} samples:"
            f" {pg_errors}; each sample on a fresh throwaway schema on {pg.shown(cfg.pg_url)};"
            " workers open it from the URL (?schema=...), each with its own connection pool."
            " Writers share one lock only: the counters row (gap-free event ids), held from"
            " the id allocation to COMMIT; the server and the workers share the same 2 cores.",
            f"PostgreSQL / SQLite, {shape}: {data['pg_tasks_per_s'].median / rate.median:.2f}x"
            " (medians of this run)",
        ]
        for sample in [*pg_conc, *pg_single]:
            notes += [f"PostgreSQL error: {m}" for m in sample.messages[:5]]
        goals.append(
            Goal(
                "2. concurrency errors (PostgreSQL)",
                "0 errors",
                f"{pg_errors} errors; {fmt(data['pg_tasks_per_s'].median)} tasks/s",
                pg_errors == 0,
            )
        )
    else:
        rows += [
            [pg_label, "tasks/s (all processes)", pg.SKIPPED, "", ""],
            [pg_label, "errors per sample", pg.SKIPPED, "", ""],
        ]
        notes.append(skipped or "PostgreSQL: no samples asked for")
        goals.append(
            Goal("2. concurrency errors (PostgreSQL)", "0 errors", pg.SKIPPED, None, skipped or "")
        )
    return SectionResult(
        title="2. Concurrency: worker processes on one database (SQLite file, PostgreSQL schema)",
        headers=["setup", "what", "median", "min", "max"],
        rows=rows,
        goals=goals,
        notes=notes,
        seconds=time.perf_counter() - began,
        data=data,
    )
