"""3. Live latency: a worker process commits events while a headless dashboard
(``App.run_test``) records when each one appears on screen.

The writer is a real worker process (``bench.worker_proc``: the loop, heartbeats, lease)
driving a no-op run whose task bodies take 10-30 ms (random, so commits do not fall into
step with the dashboard's polls). Each event's commit time is its stored timestamp; the
moment it is on screen is when the dashboard's screens have taken in the poll that
brought it (see dashboard.py). Latency = on screen - committed, both wall-clock on this host.
The dashboard runs with its defaults (those ``nanoagent`` uses).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import replace
from pathlib import Path

from bench import dashboard
from bench.agent import AGENT_NAME
from bench.bigdb import build_database
from bench.common import Config, Goal, SectionResult, Stat, child_env, fmt
from bench.common import python_command as py
from nanoagent_core.models import RunState
from nanoagent_core.sqlite import SQLiteStore

__all__ = ["latencies", "run"]

TITLE = "3. Live latency: commit -> visible on the dashboard"
WRITER = "live-writer"
#: The poll interval of the diagnostic pass (the app's own default is used for the goal).
DIAGNOSTIC_POLL = 0.1


async def _create(path: Path, tasks: int) -> None:
    store = await SQLiteStore.open(path)
    try:
        if WRITER in {r.run_id for r in await store.list_runs(text=WRITER)}:
            return
        await store.create_run(
            RunState(run_id=WRITER, goal="live latency", max_iterations=tasks, agent=AGENT_NAME)
        )
    finally:
        await store.close()


async def latencies(
    path: Path, events: int, interval: float, **options: float
) -> tuple[list[float], float]:
    """Milliseconds from commit to on screen for each event of the writer's run, and the
    dashboard's poll interval. ``options`` go to the dashboard app."""
    tasks = math.ceil(events / 1.5) + 10  # about 1.75 events per task
    await _create(path, tasks)
    child = await asyncio.create_subprocess_exec(
        *py("bench.worker_proc", str(path), WRITER, str(tasks), str(interval)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        ready = await child.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the writer did not start: {ready!r}")
        async with dashboard.watching(path, **options) as view:
            poll_interval = float(getattr(view.app, "poll_interval", float("nan")))
            view.probe.records.clear()
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            await asyncio.wait_for(child.wait(), 60 + tasks * interval * 3)
            await view.wait_row(WRITER, "completed", 10.0)
            out: list[float] = []
            for record in view.probe.records:
                if record.shown_wall is None:
                    continue
                out += [
                    (record.shown_wall - ts) * 1e3
                    for _, run_id, ts in record.events
                    if run_id == WRITER
                ]
    finally:
        if child.returncode is None:
            child.kill()
        _, err = await child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"the writer failed: {err.decode().strip()[-300:]}")
    return out, poll_interval


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    headers = ["what", "unit", "p50", "p95", "p99", "min", "max", "events"]
    if not dashboard.available():
        return SectionResult(
            title=TITLE,
            headers=headers,
            rows=[["commit -> on screen", "ms", *["pending"] * 5, "0"]],
            goals=[Goal("3. live latency p95", "<= 200 ms", "pending", None)],
            notes=[
                "pending: nanoagent_tui.app (the dashboard) does not exist yet;"
                f" {cfg.live_events} events will be timed once it does."
            ],
            seconds=time.perf_counter() - began,
        )
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    goals: list[Goal] = []
    data: dict[str, Stat] = {}
    passes: list[tuple[str, dict[str, float]]] = [("defaults", {})]
    if cfg.live_diagnostic:
        passes.append(("diagnostic", {"poll_interval": DIAGNOSTIC_POLL}))
    for label, options in passes:
        path = workdir / f"live-{label}.db"
        for leftover in workdir.glob(f"live-{label}.db*"):
            leftover.unlink()
        build_database(path, 50, 500)  # some finished runs around the live one
        values, poll_interval = asyncio.run(
            latencies(path, cfg.live_events, cfg.live_interval, **options)
        )
        stat = Stat.of(values)
        p50, p95, p99 = (stat.quantile(q) for q in (0.50, 0.95, 0.99))
        what = f"commit -> on screen, poll every {poll_interval:g} s"
        what += " (default)" if not options else " (diagnostic: what a shorter poll gives)"
        rows.append(
            [what, "ms", fmt(p50), fmt(p95), fmt(p99), fmt(stat.low), fmt(stat.high), str(stat.n)]
        )
        data["latency_ms" if not options else "latency_diag_ms"] = stat
        if not options:
            goals.append(
                Goal(
                    "3. live latency p95",
                    "<= 200 ms",
                    f"p95 {fmt(p95)} ms (p50 {fmt(p50)}, p99 {fmt(p99)}; {stat.n} events)",
                    p95 <= 200,
                    why=f"an event waits for the next poll: the default interval is"
                    f" {poll_interval:g} s",
                )
            )
        elif goals:
            goals[0] = replace(
                goals[0],
                why=goals[0].why + f"; polling every {poll_interval:g} s gives p95 {fmt(p95)} ms",
            )
    return SectionResult(
        title=TITLE,
        headers=headers,
        rows=rows,
        goals=goals,
        notes=[
            f"the writer commits a task every {cfg.live_interval * 500:.0f}-"
            f"{cfg.live_interval * 1500:.0f} ms (each task commit carries 2 events, each"
            " reflection 1); an event waits for the next poll, so latency is about"
            " uniform(0, poll interval) plus one refresh.",
            "p50/p95/p99 are nearest-rank percentiles over every event of the writer's run.",
        ],
        seconds=time.perf_counter() - began,
        data=data,
    )
