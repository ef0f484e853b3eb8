"""``uv run python -m bench.dashboard_idle``: what an idle dashboard costs, in % of a core.

The process's own CPU time (``resource.getrusage``: user + system) over a window of wall
time, for three things in the same run, one after the other in the same process:

* baseline: the event loop alone, sleeping (what the measuring itself costs);
* the dashboard over a database of ``--runs`` runs with a filter that hides every row (its
  polls, ticks and top bar, no table);
* the same dashboard with every run listed (the window holds them all), nothing running.

The dashboard runs headlessly (``App.run_test``) at 160x48 with its default poll and tick
intervals; Textual composes and renders each frame as on a terminal (the headless driver
drops the bytes). Goal (issue 14): at most 3% of a core with 1,000 runs listed.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench.bigdb import build_database
from bench.dashboard import SIZE

__all__ = ["idle_cpu", "main"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _window(seconds: float) -> float:
    """% of one core this process used over ``seconds`` of wall time."""
    cpu, wall = _cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    return 100 * (_cpu() - cpu) / (time.perf_counter() - wall)


async def _dashboard(path: Path, runs: int, seconds: float, *, hide_all: bool) -> float:
    from textual.widgets import DataTable

    from nanoagent_tui.app import DashboardApp
    from nanoagent_tui.live import Filter

    app = DashboardApp(str(path), animate=False, window=max(500, runs))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        deadline = time.monotonic() + 120
        while table.row_count < runs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the dashboard showed {table.row_count} of {runs} runs")
            await pilot.pause(0.05)
        if hide_all:
            app.live.set_filter(Filter("no run holds this text"))
            app.request_poll()
            while table.row_count:
                await pilot.pause(0.05)
        await asyncio.sleep(2)  # settle: the first frames after a change
        return await _window(seconds)


def idle_cpu(runs: int = 1000, seconds: float = 20.0) -> dict[str, float]:
    """% of a core: baseline, dashboard with no row shown, dashboard with ``runs`` rows."""
    with tempfile.TemporaryDirectory(prefix="nanoagent-idle-") as workdir:
        path = Path(workdir) / "idle.db"
        build_database(path, runs, runs * 10, tasked_runs=min(runs, 100))
        return {
            "baseline (event loop sleeping)": asyncio.run(_window(seconds)),
            "dashboard, filter hides every run": asyncio.run(
                _dashboard(path, runs, seconds, hide_all=True)
            ),
            f"dashboard, {runs:,} runs listed": asyncio.run(
                _dashboard(path, runs, seconds, hide_all=False)
            ),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_idle", description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    figures = idle_cpu(args.runs, args.seconds)
    print(f"idle CPU over {args.seconds:g} s each, % of one core:")
    for what, percent in figures.items():
        print(f"  {what:<40} {percent:6.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
