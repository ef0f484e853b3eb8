"""How the dashboard scales: ``uv run python tests/tui/bench_scale.py [RUNS [EVENTS]]``.

Seeds a database fast (schema through the store, rows through plain sqlite3 in one
transaction), then measures with the real app in a headless terminal of 160x48:

* open: from starting the app to the runs table showing its rows;
* idle poll: one poll when nothing changed (PRAGMA data_version only);
* refresh after one change: another connection appends one event to one run; the poll that
  reads it, and the screen update that follows;
* filter: typing a filter until the table shows the matches; scrolling: page down to the end.

Each figure is printed for a small database and for the big one, to show what grows.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from textual.geometry import Region

from nanoagent_core.models import EventKind, utc_now
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import NewEvent
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.live import Filter
from nanoagent_tui.screens.runs import RunsScreen

STATUSES = ["completed"] * 80 + ["failed"] * 8 + ["aborted"] * 6 + ["interrupted"] * 6


async def seed(path: Path, runs: int, events: int, running: int = 8) -> None:
    store = await SQLiteStore.open(path)
    await store.close()
    rng = random.Random(7)
    now = utc_now().timestamp()
    owner = current_owner()
    run_rows: list[tuple[object, ...]] = []
    task_rows: list[tuple[object, ...]] = []
    event_rows: list[tuple[object, ...]] = []
    per_run = max(1, events // runs)
    for n in range(runs):
        run_id = f"run-{n:06d}"
        live = n >= runs - running
        status = "running" if live else rng.choice(STATUSES)
        updated = now - (runs - n) * 30.0
        run_rows.append(
            (run_id, f"Goal number {n}: {rng.choice(['index', 'draft', 'survey'])} the data",
             50, "demo", json.dumps({"tasks": "5"}), "executing" if live else "done", 3,
             "t3" if live else None, status, updated - 60, updated,
             None if live else updated, owner.host if live else None,
             owner.pid if live else None, owner.pid_started if live else None, 1,
             updated if live else None, now + 3600 if live else None, None, None, None, 5,
             2 if live else 5)
        )  # fmt: skip
        for t in range(5):
            task_rows.append(
                (run_id, f"t{t}", t, f"Step {t}", "done" if t < 2 or not live else "pending",
                 5, "ok" if t < 2 else None, 1, 0, None)
            )  # fmt: skip
        for e in range(per_run):
            data = {"task_id": f"t{e % 5}", "attempt": 1, "iteration": e, "seconds": 0.5}
            event_rows.append((run_id, updated - per_run + e, "task_done", json.dumps(data)))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO runs VALUES ({','.join('?' * 23)})", run_rows)
    conn.executemany(
        "INSERT INTO tasks (run_id, task_id, seq, description, status, priority, result,"
        " attempts, failures, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
        task_rows,
    )
    event_rows.sort(key=lambda row: float(str(row[1])))
    conn.executemany("INSERT INTO events (run_id, ts, kind, data) VALUES (?,?,?,?)", event_rows)
    conn.execute("COMMIT")
    conn.close()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


async def open_once(path: Path) -> tuple[float, float]:
    """Seconds from starting the app to its runs table showing rows, and of that the
    database load."""
    app = DashboardApp(str(path), animate=False, poll_interval=3600)
    began = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        while not (isinstance(app.screen, RunsScreen) and app.screen.table.row_count > 0):
            await pilot.pause(0.01)
        await pilot.pause()
        return time.perf_counter() - began, app.live.stats.last_load


async def measure(path: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    opens = [await open_once(path) for _ in range(3)]
    figures["open (median of 3)"] = statistics.median(total for total, _ in opens)
    figures["open: of which db load"] = statistics.median(load for _, load in opens)
    # The app's own poll loop polls once (the open) and then sleeps: the polls below are
    # made directly, one at a time, as the loop would make them.
    app = DashboardApp(str(path), animate=False, poll_interval=3600)
    began = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        while not (isinstance(screen, RunsScreen) and screen.table.row_count > 0):
            await pilot.pause(0.01)
            screen = app.screen
        await pilot.pause()
        figures["open (this run)"] = time.perf_counter() - began
        assert isinstance(screen, RunsScreen)
        figures["rows"] = screen.table.row_count
        live = app.live

        # Idle polls (the app's own loop is paused by awaiting here; poll directly).
        samples: list[float] = []
        for _ in range(200):
            t = time.perf_counter()
            assert await live.poll(app.clock()) is None
            samples.append(time.perf_counter() - t)
        figures["idle poll"] = statistics.median(samples)

        # Refresh after one change by another connection: one event on one run.
        writer = await SQLiteStore.open(path)
        poll_times: list[float] = []
        view_times: list[float] = []
        try:
            for k in range(20):
                run_id = f"run-{int(figures['rows']) // 2 + k:06d}"
                await writer.append_event(run_id, NewEvent(kind=EventKind.NOTE, data={"k": k}))
                t = time.perf_counter()
                update = await live.poll(app.clock())
                poll_times.append(time.perf_counter() - t)
                assert update is not None
                t = time.perf_counter()
                screen.refresh_view()
                view_times.append(time.perf_counter() - t)
        finally:
            await writer.close()
        figures["refresh: poll"] = statistics.median(poll_times)
        figures["refresh: screen"] = statistics.median(view_times)

        # A tick with nothing new (statuses and ages re-evaluated, no DB I/O).
        ticks: list[float] = []
        for _ in range(20):
            t = time.perf_counter()
            screen.refresh_view()
            ticks.append(time.perf_counter() - t)
        figures["tick (no change)"] = statistics.median(ticks)

        # Filtering through SQL: the poll that reloads, the table update, and rendering the
        # lines in view (5 times each, the median).
        table = screen.table
        region = Region(0, 0, table.size.width, table.size.height)
        for label, wanted in (
            ("filter 'survey'", Filter(text="survey")),
            ("clear filter", Filter()),
        ):
            polls, tables, renders = [], [], []
            for _ in range(5):
                live.set_filter(Filter(text="x") if wanted == Filter() else Filter())
                await live.poll(app.clock())
                screen.refresh_view()
                await pilot.pause()
                t = time.perf_counter()
                live.set_filter(wanted)
                await live.poll(app.clock())
                polled = time.perf_counter()
                screen.refresh_view()
                viewed = time.perf_counter()
                table.render_lines(region)
                polls.append(polled - t)
                tables.append(viewed - polled)
                renders.append(time.perf_counter() - viewed)
            figures[f"{label}: poll"] = statistics.median(polls)
            figures[f"{label}: table"] = statistics.median(tables)
            figures[f"{label}: render"] = statistics.median(renders)

        # Scrolling: a page down, then rendering the lines now in view.
        table.move_cursor(row=0)
        await pilot.pause()
        pages: list[float] = []
        while table.cursor_row < table.row_count - 1 and len(pages) < 50:
            t = time.perf_counter()
            table.action_page_down()
            table.render_lines(region)
            pages.append(time.perf_counter() - t)
            await pilot.pause()
        figures["page down + render"] = statistics.median(pages)
    return figures


async def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    events = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (n_runs, n_events) in {
            "100 runs / 1k events": (100, 1_000),
            "1,000 runs / 10k events": (1_000, 10_000),
            f"{runs:,} runs / {events:,} events": (runs, events),
        }.items():
            path = Path(tmp) / f"bench-{n_runs}.db"
            t = time.perf_counter()
            await seed(path, n_runs, n_events)
            print(f"seeded {label} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            results[label] = await measure(path)
    labels = list(results)
    print(f"{'':28}" + "".join(f"{label:>30}" for label in labels))
    for key in results[labels[0]]:
        cells = []
        for label in labels:
            value = results[label][key]
            cells.append(f"{int(value):>30}" if key == "rows" else f"{_ms(value):>30}")
        print(f"{key:28}" + "".join(cells))


if __name__ == "__main__":
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    asyncio.run(main())
