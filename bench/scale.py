"""4. Scale: a small and a big database side by side (10,000 runs / 100,000 events and
100,000 runs / 1,000,000 events in the full run).

Store level (what a dashboard does on each tick): one idle poll (``change_token()`` with
nothing new), one refresh after a single change (token, ``read_events(after_id)`` and
``get_runs`` of the runs those events name), and a first page (``count_runs`` and the 50
newest runs). Command level: ``nanoagent list --json`` (everything) and with ``--limit 50``,
against the same command on an empty database (interpreter and import start-up). Dashboard
level (see dashboard.py): time to first full screen, idle tick, refresh after one change.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench import dashboard
from bench.bigdb import BuildInfo, build_database, run_id_of
from bench.common import (
    Config,
    Figure,
    Goal,
    SectionResult,
    Stat,
    child_env,
    fmt,
    nanoagent_command,
    paired_ratios,
)
from nanoagent_core.models import EventKind
from nanoagent_core.protocols import NewEvent
from nanoagent_core.sqlite import SQLiteStore

__all__ = ["list_seconds", "run", "store_costs"]


#: Rounds of the store-level figures (each database takes a turn in each round).
ROUNDS = 5

STORE_FIGURES = (
    Figure("idle_poll", "store: one idle poll (change_token)", "us", flat=True),
    Figure("refresh", "store: refresh after 1 change (token + read_events + get_runs)", "us",
           flat=True),
    Figure("first_page", "store: first page (count_runs + 50 newest runs)", "ms"),
    Figure("open_writer", "store: open + close as a writer (PRAGMA quick_check included)", "ms"),
    Figure("open_viewer", "store: open + close read-only (cheap probe, no quick_check)", "ms"),
)  # fmt: skip


async def _time_async(fn: Callable[[], object], samples: int, scale: float) -> Stat:
    values: list[float] = []
    for _ in range(samples):
        began = time.perf_counter()
        result = fn()
        if asyncio.iscoroutine(result):
            await result
        values.append((time.perf_counter() - began) * scale)
    return Stat.of(values)


async def store_costs(path: Path, runs: int, samples: int) -> dict[str, Stat]:
    """Idle poll, one-change refresh and first page, each timed ``samples`` times."""
    reader = await SQLiteStore.open(path)
    writer = await SQLiteStore.open(path)
    try:
        token = await reader.change_token()
        last_id = _last_event_id(path)
        for _ in range(5):  # warm the page cache and the prepared statements
            await reader.change_token()
        idle = await _time_async(reader.change_token, samples, 1e6)

        refresh: list[float] = []
        for n in range(samples):
            await writer.append_event(
                run_id_of(runs - 1 - n % 20), NewEvent(kind=EventKind.NOTE, data={"n": n})
            )
            began = time.perf_counter()
            now_token = await reader.change_token()
            events = await reader.read_events(after_id=last_id)
            changed = await reader.get_runs(list(dict.fromkeys(e.run_id for e in events)))
            refresh.append((time.perf_counter() - began) * 1e6)
            if now_token == token or len(events) != 1 or len(changed) != 1:
                raise RuntimeError("a refresh did not see exactly the one change")
            token, last_id = now_token, events[-1].id

        async def first_page() -> None:
            await reader.count_runs()
            if len(await reader.list_runs(limit=50)) != min(50, runs):
                raise RuntimeError("short first page")

        page = await _time_async(first_page, max(5, samples // 5), 1e3)

        async def open_close(read_only: bool) -> None:
            store = await SQLiteStore.open(path, read_only=read_only, create=False)
            await store.close()

        opens = max(3, samples // 10)
        open_writer = await _time_async(lambda: open_close(False), opens, 1e3)
        open_viewer = await _time_async(lambda: open_close(True), opens, 1e3)
    finally:
        await writer.close()
        await reader.close()
    return {
        "idle_poll": idle,
        "refresh": Stat.of(refresh),
        "first_page": page,
        "open_writer": open_writer,
        "open_viewer": open_viewer,
    }


def _last_event_id(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
    finally:
        conn.close()


def list_seconds(path: Path, extra: list[str], repeats: int) -> Stat:
    """Wall time of ``nanoagent list --json`` (plus ``extra``) on ``path``."""
    values: list[float] = []
    env = child_env()
    for _ in range(repeats):
        began = time.perf_counter()
        done = subprocess.run(
            nanoagent_command("list", "--json", "--db", str(path), *extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            check=False,
        )
        values.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"nanoagent list failed: {done.stderr.strip()[-300:]}")
    return Stat.of(values)


def _cell(stat: Stat | None) -> str:
    if stat is None:
        return "pending"
    return f"{fmt(stat.median)} ({fmt(stat.low)}-{fmt(stat.high)})"


def _merged(stats: list[Stat]) -> Stat:
    return Stat.of(v for stat in stats for v in stat.values)


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    builds: list[BuildInfo] = []
    for runs, events in cfg.scale_sizes:
        path = workdir / f"scale-{runs}.db"
        for leftover in workdir.glob(f"scale-{runs}.db*"):
            leftover.unlink()
        builds.append(build_database(path, runs, events))

    empty = workdir / "scale-empty.db"
    if not empty.exists():
        asyncio.run(_create_empty(empty))
    columns = [b.runs for b in builds]
    # figure -> database -> one Stat per round; the databases take turns, round after round.
    rounds: dict[str, dict[int, list[Stat]]] = {}

    def add(key: str, runs: int, stat: Stat) -> None:
        rounds.setdefault(key, {}).setdefault(runs, []).append(stat)

    store_rounds = max(1, min(ROUNDS, cfg.poll_samples // 2))
    for _ in range(store_rounds):
        for build in builds:
            costs = asyncio.run(
                store_costs(build.path, build.runs, max(2, cfg.poll_samples // store_rounds))
            )
            for key, stat in costs.items():
                add(key, build.runs, stat)
    base: list[Stat] = []
    for _ in range(cfg.list_repeats):
        base.append(list_seconds(empty, [], 1))
        for build in builds:
            add("list_all", build.runs, list_seconds(build.path, [], 1))
            add("list_50", build.runs, list_seconds(build.path, ["--limit", "50"], 1))

    dash = dashboard.scale_costs([b.path for b in builds], cfg)
    if dash is not None:
        for key, per_path in dash.items():
            rounds[key] = {b.runs: per_path[b.path] for b in builds if b.path in per_path}
    rows_spec: list[Figure] = [
        *dashboard.SCALE_FIGURES,
        *STORE_FIGURES,
        Figure("list_all", "`nanoagent list --json` (all runs)", "s"),
        Figure("list_50", "`nanoagent list --json --limit 50`", "s"),
    ]

    headers = ["what", "unit", *[f"{b.runs:,} runs / {b.events:,} events" for b in builds]]
    headers.append("big / small")
    rows: list[list[str]] = []
    goals: list[Goal] = []
    data: dict[str, Stat] = {}
    for fig in rows_spec:
        per = rounds.get(fig.key, {})
        merged = {c: _merged(per[c]) for c in columns if per.get(c)}
        cells = [_cell(merged.get(c)) for c in columns]
        small, big = per.get(columns[0]), per.get(columns[-1])
        grow = (
            None
            if not small or not big
            else paired_ratios([s.median for s in big], [s.median for s in small])
        )
        ratio = "" if grow is None else f"{grow.median:.2f}x ({grow.low:.2f}-{grow.high:.2f})"
        rows.append([fig.what, fig.unit, *cells, ratio])
        for c, stat in merged.items():
            data[f"{fig.key}_{c}"] = stat
        if grow is not None:
            data[f"{fig.key}_growth"] = grow
        if fig.flat and grow is not None:
            low, high = merged[columns[0]], merged[columns[-1]]
            goals.append(
                Goal(
                    f"4. {fig.what} stays flat",
                    "big/small <= 1.5x",
                    f"{grow.median:.2f}x ({fmt(low.median)} -> {fmt(high.median)} {fig.unit})",
                    grow.median <= 1.5,
                )
            )
        elif fig.flat:
            goals.append(Goal(f"4. {fig.what} stays flat", "big/small <= 1.5x", "pending", None))
    base_list = _merged(base)
    rows.append(["`nanoagent list --json`, empty database (start-up)", "s", _cell(base_list),
                 "", ""])  # fmt: skip
    data["list_empty"] = base_list
    notes = [
        f"built {b.runs:,} runs / {b.events:,} events in {b.seconds:.1f} s ({b.bytes / 1e6:.0f} MB)"
        for b in builds
    ]
    notes += [
        "Cells: median (min-max) of all samples. 'big / small': the median (min-max) of the"
        " ratios of round medians; the two databases take turns round after round.",
        "Both databases hold 20 runs shown crashed (stored running, worker dead) and tasks"
        " for their newest 1,000 runs; the rest is history.",
        "Dashboard figures come from the app's own polls (see bench/dashboard.py); the time"
        " to first full screen is in-process (Python start-up and imports excluded, see the"
        " `nanoagent --help` baseline in section 5).",
    ]
    return SectionResult(
        title="4. Scale: small and big database side by side",
        headers=headers,
        rows=rows,
        goals=goals,
        notes=notes,
        seconds=time.perf_counter() - began,
        data=data,
    )


async def _create_empty(path: Path) -> None:
    store = await SQLiteStore.open(path)
    await store.close()
