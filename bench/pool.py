"""Section 8: the pool worker (issue 13 items 1-3), with real processes on this host.

* One ``nanoagent worker --until-idle`` process drives N queued demo runs at once (N = 1,000
  at full size; each run 3 task bodies sleeping ``delay`` = 1 s, so every run is in flight
  together): its wall time, the runs completed and the errors it reports, and its peak
  resident memory (``VmHWM`` of /proc/PID/status, read until it exits).
* The dashboard's refresh after one change (bench.dashboard: poll + screen update) on the
  N-run database that pool left against a 10-run database driven the same way; the two take
  turns, round after round, and the verdict is the median of the per-round ratios.
* Recovery: a ``worker --recover`` process runs idle beside a lone worker (``run --detach``)
  that is SIGKILLed mid-task; from the kill to the run's ``run_restarted`` event (the
  recovering pool's claim), in lease periods. Once with the victim on this host (its dead pid
  frees the run) and once presenting another host's name (only the lease, by the store's
  clock, frees it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from bench import dashboard
from bench.common import (
    Config,
    Goal,
    SectionResult,
    Stat,
    child_env,
    fmt,
    nanoagent_command,
    paired_ratios,
    wait_for,
)
from nanoagent_core.models import RunState, RunStatus, validated
from nanoagent_core.sqlite import SQLiteStore

__all__ = ["run"]

#: (runs, body seconds, recovery repeats, dashboard rounds) by size label
_SIZES = {"full": (1000, 1.0, 3, 7), "quick": (200, 0.5, 2, 3), "tiny": (20, 0.05, 1, 1)}
TASKS = 3
HEARTBEAT = 0.5
LEASE = 3 * HEARTBEAT
GOAL_RSS_MB = 300.0
GOAL_DASH_RATIO = 1.5
GOAL_LEASES = 2.0
SMALL = 10


def _sizes(cfg: Config) -> tuple[int, float, int, int]:
    return _SIZES.get(cfg.label, _SIZES["quick"])


async def _enqueue(path: Path, runs: int, delay: float) -> None:
    store = await SQLiteStore.open(path)
    options = {"tasks": str(TASKS), "followups": "0", "delay": f"{delay:g}"}
    try:
        for n in range(runs):
            run = validated(
                RunState,
                run_id=f"pool-{n:05d}",
                goal=f"bench pool run {n}",
                max_iterations=20,
                agent_options=options,
                status=RunStatus.QUEUED,
            )
            await store.create_run(run)
    finally:
        await store.close()


def _peak_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _drive(path: Path, runs: int, log: Path) -> tuple[float, float, str]:
    """One pool worker driving every queued run of ``path``: (seconds, peak RSS in MB, its
    final line)."""
    command = nanoagent_command(
        "worker", "--db", str(path), "--until-idle", "--concurrency", str(runs),
        "--heartbeat", "2",
    )  # fmt: skip
    began = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(
            command, env=child_env(), stdout=subprocess.PIPE, stderr=err, text=True
        )
        peak = 0
        while proc.poll() is None:
            got = _peak_kb(proc.pid)
            peak = max(peak, got or 0)
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"the pool worker exited {proc.returncode}: {log.read_text()[-500:]}")
    last = [line for line in out.splitlines() if " stopped: " in line]
    return seconds, peak / 1024, last[-1] if last else out.strip()


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    finally:
        conn.close()


def _errors(line: str) -> int:
    for part in line.split(","):
        words = part.split()
        if words[:1] == ["errors"]:
            return int(words[1])
    return -1


def _dashboard_ratio(big: Path, small: Path, rounds: int, samples: int) -> tuple[Stat, Stat, Stat]:
    """Refresh after one change on ``big`` and ``small``, the two taking turns: (big, small,
    per-round ratios)."""
    steady = dashboard._steady_costs  # pyright: ignore[reportPrivateUsage]
    asyncio.run(dashboard.first_screen_seconds(small))  # warm up imports and Textual
    big_ms: list[float] = []
    small_ms: list[float] = []
    for _ in range(rounds):
        big_ms.append(asyncio.run(steady(big, "pool-00000", samples))["dash_refresh"].median)
        small_ms.append(asyncio.run(steady(small, "pool-00000", samples))["dash_refresh"].median)
    return Stat.of(big_ms), Stat.of(small_ms), paired_ratios(big_ms, small_ms)


def _restart_after(path: Path, run_id: str, killed_at: float, timeout: float) -> float | None:
    """Seconds from ``killed_at`` (time.time()) to the run's run_restarted event."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    try:
        found: list[float] = []

        def restarted() -> bool:
            row = conn.execute(
                "SELECT ts FROM events WHERE run_id = ? AND kind = 'run_restarted'"
                " ORDER BY id DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            if row is not None and row[0] >= killed_at:
                found.append(float(row[0]))
                return True
            return False

        if not wait_for(restarted, timeout, interval=0.005):
            return None
        return found[0] - killed_at
    finally:
        conn.close()


def _owner_going(path: Path, run_id: str) -> int | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT owner_pid, tasks_done FROM runs WHERE run_id = ? AND status = 'running'",
            (run_id,),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row and row[0] and row[1] >= 1 else None


def _victim_pid(path: Path, run_id: str, timeout: float) -> int:
    """The pid of the worker driving ``run_id`` once it has a task done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _owner_going(path, run_id)
        if pid is not None:
            return pid
        time.sleep(0.01)
    raise RuntimeError(f"the worker of {run_id} never got going")


def _recovery(workdir: Path, repeats: int) -> dict[str, list[float]]:
    """Kill -> restarted, in seconds, per victim placement."""
    path = workdir / "recover.db"
    asyncio.run(_enqueue(path, 0, 0.0))
    rescuer = subprocess.Popen(
        nanoagent_command(
            "worker", "--db", str(path), "--recover", "--heartbeat", str(HEARTBEAT),
            "--concurrency", "10",
        ),
        env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out: dict[str, list[float]] = {"same host": [], "another host": []}
    try:
        for n in range(repeats):
            for place, host in (("same host", None), ("another host", "bench-elsewhere")):
                run_id = f"victim-{n}-{'local' if host is None else 'remote'}"
                env = child_env({"NANOAGENT_HOST": host} if host else None)
                started = subprocess.run(
                    nanoagent_command(
                        "run", "bench recovery", "--run-id", run_id, "--detach", "--db",
                        str(path), "--heartbeat", str(HEARTBEAT), "--option", "tasks=40",
                        "--option", "delay=0.2",
                    ),
                    env=env, capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
                if started.returncode != 0:
                    raise RuntimeError(f"run --detach failed: {started.stderr.strip()}")
                victim = _victim_pid(path, run_id, 60)
                killed_at = time.time()
                os.kill(victim, signal.SIGKILL)
                took = _restart_after(path, run_id, killed_at, 60)
                if took is None:
                    raise RuntimeError(f"{run_id} was not taken up again within 60 s")
                out[place].append(took)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        try:
            rescuer.wait(120)
        except subprocess.TimeoutExpired:
            rescuer.kill()
            rescuer.wait()
    return out


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    runs, delay, repeats, rounds = _sizes(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    big, small = workdir / "pool-big.db", workdir / "pool-small.db"
    asyncio.run(_enqueue(big, runs, delay))
    asyncio.run(_enqueue(small, SMALL, delay))
    seconds, rss, line = _drive(big, runs, workdir / "pool-big.log")
    _drive(small, SMALL, workdir / "pool-small.log")
    counts = _counts(big)
    completed = counts.get("completed", 0)
    errors = _errors(line)
    big_ms, small_ms, ratios = _dashboard_ratio(big, small, rounds, max(5, cfg.poll_samples // 2))
    recovered = _recovery(workdir, repeats)
    rows = [
        [f"one pool process: {runs:,} queued runs ({TASKS} bodies of {delay:g} s each)",
         f"{seconds:.1f} s wall", f"{completed:,} completed; pool says: {line.split(': ', 1)[-1]}"],
        ["peak resident memory of the pool process (VmHWM)", f"{rss:.0f} MB",
         f"{rss * 1024 / max(1, runs):.0f} KB per run"],
        [f"dashboard refresh after 1 change, {runs:,}-run database", f"{fmt(big_ms.median)} ms",
         f"min {fmt(big_ms.low)}, max {fmt(big_ms.high)}"],
        [f"dashboard refresh after 1 change, {SMALL}-run database", f"{fmt(small_ms.median)} ms",
         f"min {fmt(small_ms.low)}, max {fmt(small_ms.high)}"],
        ["ratio (per round, median)", f"{ratios.median:.2f}x",
         f"min {ratios.low:.2f}, max {ratios.high:.2f}, {ratios.n} rounds"],
    ]  # fmt: skip
    worst: list[float] = []
    for place, values in recovered.items():
        stat = Stat.of(values)
        worst.append(stat.high / LEASE)
        rows.append(
            [f"recovery after SIGKILL, victim on {place} (lease {LEASE:g} s)",
             f"{stat.median * 1e3:.0f} ms", f"{stat.median / LEASE:.2f} leases median,"
             f" max {stat.high / LEASE:.2f} ({stat.n} kills)"]
        )  # fmt: skip
    goals = [
        Goal(
            f"one pool process drives {runs:,} concurrent demo runs to completion, 0 errors",
            f"{runs:,} completed, 0 errors",
            f"{completed:,} completed, {errors} errors",
            completed == runs and errors == 0,
        ),
        Goal(
            f"... at most {GOAL_RSS_MB:.0f} MB resident in total",
            f"<= {GOAL_RSS_MB:.0f} MB",
            f"{rss:.0f} MB peak",
            rss <= GOAL_RSS_MB,
        ),
        Goal(
            f"dashboard refresh after one change: {runs:,}-run vs {SMALL}-run database",
            f"<= {GOAL_DASH_RATIO}x",
            f"{ratios.median:.2f}x",
            ratios.median <= GOAL_DASH_RATIO,
            "median of per-round ratios, same invocation",
        ),
        Goal(
            "a crashed run with --recover is running again",
            f"<= {GOAL_LEASES:g} lease periods",
            f"worst {max(worst):.2f} leases",
            max(worst) <= GOAL_LEASES,
            "the slowest of every kill, either placement",
        ),
    ]
    return SectionResult(
        title="8. Pool worker: many runs per process, queue, recovery",
        headers=["what", "figure", "detail"],
        rows=rows,
        goals=goals,
        notes=[
            f"sizes: {cfg.label}; pool heartbeat 2 s for the {runs:,}-run drive, {HEARTBEAT:g} s"
            " (lease 1.5 s) for recovery; SQLite, synchronous NORMAL",
        ],
        seconds=time.perf_counter() - began,
        data={"rss_mb": Stat.of([rss]), "dash_ratio": ratios, "recover_leases": Stat.of(worst)},
    )
