"""5. Crash detection and resume latency, with real processes on this host.

One demo run (50 tasks of 0.2 s) is started with ``nanoagent run --detach``. Then, each
cycle: wait until its worker is mid-task, SIGKILL it, and poll the store (``get_run`` and
``shown_status``, as the dashboard and ``nanoagent list`` decide) until the run shows
``crashed``; then start ``nanoagent resume RUN_ID`` (alternately in the foreground and with
``--detach``) and time from the command's start to the first new event in the database
(the claim) and to the first task restarted. The resumed worker is the next cycle's victim.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import dashboard
from bench.common import Config, SectionResult, Stat, child_env, fmt_stat, nanoagent_command
from nanoagent_core.models import RunState
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.status import ShownStatus, shown_status

__all__ = ["CrashSamples", "crash_samples", "run"]

RUN_ID = "bench-crash"


@dataclass
class CrashSamples:
    detect_ms: list[float] = field(default_factory=list[float])
    polls: list[int] = field(default_factory=list[int])
    resume_fg_ms: list[float] = field(default_factory=list[float])  #: to the first new event
    resume_fg_task_ms: list[float] = field(default_factory=list[float])  #: to a task restart
    resume_bg_ms: list[float] = field(default_factory=list[float])
    resume_bg_task_ms: list[float] = field(default_factory=list[float])
    dashboard_ms: list[float] = field(default_factory=list[float])  #: kill -> row says crashed


class _Events:
    """Polls the events table with plain sqlite3 (cheap, so polling every millisecond does not
    slow the worker down)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 5000")

    def last_id(self) -> int:
        return int(self._conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def after(self, event_id: int) -> list[tuple[int, str]]:
        rows = self._conn.execute(
            "SELECT id, kind FROM events WHERE run_id = ? AND id > ? ORDER BY id",
            (RUN_ID, event_id),
        ).fetchall()
        return [(int(i), str(k)) for i, k in rows]

    def close(self) -> None:
        self._conn.close()


async def _wait_events(
    events: _Events, after: int, kinds: set[str], timeout: float
) -> float | None:
    """perf_counter() when an event after ``after`` of one of ``kinds`` (any, if empty) is
    seen; the database is looked at every millisecond."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        seen = events.after(after)
        if any(kind in kinds or not kinds for _, kind in seen):
            return time.perf_counter()
        await asyncio.sleep(0.001)
    return None


async def _start(command: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def _detect(store: SQLiteStore, pid: int, timeout: float) -> tuple[float, float, int]:
    """SIGKILL ``pid``, then poll until the run shows crashed: (kill time, milliseconds,
    polls)."""
    began = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    polls = 0
    while time.perf_counter() - began < timeout:
        polls += 1
        run = await store.get_run(RUN_ID)
        if shown_status(run) is ShownStatus.CRASHED:
            return began, (time.perf_counter() - began) * 1e3, polls
    raise RuntimeError("the killed run never showed crashed")


async def _owner_pid(store: SQLiteStore, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: RunState = await store.get_run(RUN_ID)
        if run.owner is not None and shown_status(run) is ShownStatus.RUNNING:
            return run.owner.pid
        await asyncio.sleep(0.005)
    raise RuntimeError("no live worker took up the run")


async def crash_samples(
    path: Path, cycles: int, timeout: float = 30.0, *, with_dashboard: bool = False
) -> CrashSamples:
    env = child_env()
    out = CrashSamples()
    started = await _start(
        nanoagent_command(
            "run", "Benchmark crash detection and resume", "--detach", "--db", str(path),
            "--run-id", RUN_ID, "--max-iterations", "200", "--heartbeat", "2",
            "--option", "tasks=50", "--option", "delay=0.2", "--option", "followups=0",
        ),
        env,
    )  # fmt: skip
    _, err = await started.communicate()
    if started.returncode != 0:
        raise RuntimeError(f"nanoagent run --detach failed: {err.decode().strip()}")
    store = await SQLiteStore.open(path)
    events = _Events(path)
    children: list[asyncio.subprocess.Process] = []
    rng = random.Random(5)
    views = contextlib.AsyncExitStack()
    try:
        view = await views.enter_async_context(dashboard.watching(path)) if with_dashboard else None
        for cycle in range(cycles * 2):
            pid = await _owner_pid(store, timeout)
            # mid-task: wait for a task to start, then a random part of its 0.2 s body
            mark = events.last_id()
            if await _wait_events(events, mark, {"task_started"}, timeout) is None:
                raise RuntimeError("the worker made no progress")
            await asyncio.sleep(rng.uniform(0.0, 0.15))
            killed, detect, polls = await _detect(store, pid, timeout)
            out.detect_ms.append(detect)
            out.polls.append(polls)
            if view is not None:
                shown = await view.wait_row(RUN_ID, "crashed", timeout)
                out.dashboard_ms.append((shown - killed) * 1e3)
            detach = cycle % 2 == 1
            mark = events.last_id()
            args = ["resume", RUN_ID, "--db", str(path)]
            began = time.perf_counter()
            command = [*args, "--detach"] if detach else [*args, "--quiet"]
            children.append(await _start(nanoagent_command(*command), env))
            first = await _wait_events(events, mark, set(), timeout)
            task = await _wait_events(events, mark, {"task_started"}, timeout)
            if first is None or task is None:
                raise RuntimeError("the resumed run recorded nothing")
            (out.resume_bg_ms if detach else out.resume_fg_ms).append((first - began) * 1e3)
            (out.resume_bg_task_ms if detach else out.resume_fg_task_ms).append(
                (task - began) * 1e3
            )
    finally:
        await views.aclose()
        try:
            run = await store.get_run(RUN_ID)
            if run.owner is not None and shown_status(run) is ShownStatus.RUNNING:
                os.kill(run.owner.pid, signal.SIGKILL)
        finally:
            for child in children:
                if child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
                await child.wait()
            events.close()
            await store.close()
    return out


def _startup_seconds() -> float:
    began = time.perf_counter()
    subprocess.run(
        nanoagent_command("--help"), stdout=subprocess.DEVNULL, env=child_env(), check=True
    )
    return time.perf_counter() - began


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "crash.db"
    for leftover in workdir.glob("crash.db*"):
        leftover.unlink()
    with_dashboard = dashboard.available()
    got = asyncio.run(crash_samples(path, cfg.crash_repeats, with_dashboard=with_dashboard))
    startup = Stat.of(_startup_seconds() * 1e3 for _ in range(cfg.crash_repeats))
    detect = Stat.of(got.detect_ms)
    polls = Stat.of(got.polls)
    fg, fg_task = Stat.of(got.resume_fg_ms), Stat.of(got.resume_fg_task_ms)
    bg, bg_task = Stat.of(got.resume_bg_ms), Stat.of(got.resume_bg_task_ms)
    rows = [
        ["SIGKILL -> store poll shows crashed", "ms", *fmt_stat(detect)],
        ["  polls needed (get_run + shown_status)", "count", *fmt_stat(polls)],
        [
            "SIGKILL -> dashboard row shows crashed",
            "ms",
            *(fmt_stat(Stat.of(got.dashboard_ms)) if got.dashboard_ms else ["pending"] * 3),
        ],
        ["`nanoagent resume` (foreground) -> first new event", "ms", *fmt_stat(fg)],
        ["`nanoagent resume` (foreground) -> first task restarted", "ms", *fmt_stat(fg_task)],
        ["`nanoagent resume --detach` -> first new event", "ms", *fmt_stat(bg)],
        ["`nanoagent resume --detach` -> first task restarted", "ms", *fmt_stat(bg_task)],
        ["baseline: `nanoagent --help` (interpreter + imports)", "ms", *fmt_stat(startup)],
    ]
    return SectionResult(
        title="5. Crash detection and resume latency (real processes, same host)",
        headers=["what", "unit", "median", "min", "max"],
        rows=rows,
        notes=[
            f"{len(got.detect_ms)} kills; detection is how long the killed process takes to be"
            " seen gone by the check every view uses (pid + start time in /proc); a view adds"
            " its own polling interval on top.",
            "The dashboard (headless, defaults) watches the same database during the kills;"
            " it re-decides statuses on its tick, so its figure is about uniform(0, tick).",
        ],
        seconds=time.perf_counter() - began,
        data={
            "detect_ms": detect,
            "resume_fg_ms": fg,
            "resume_bg_ms": bg,
            "startup_ms": startup,
            **({"dashboard_ms": Stat.of(got.dashboard_ms)} if got.dashboard_ms else {}),
        },
    )
