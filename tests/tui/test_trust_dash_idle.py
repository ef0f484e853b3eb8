"""An idle dashboard redraws only what changed (issue 14 item 5): between polls, a tick
touches only the age cells of the rows on screen whose text changed, once per second of
the clock. (The CPU figure itself is measured by ``python -m bench.dashboard_idle``.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tuikit import EVERY_STATUS, NOW, FakeClock, Seed, loaded, runs_screen, seed_database

from nanoagent_tui.app import DashboardApp

MANY = tuple(
    Seed(f"bulk-{n:03d}", f"Bulk run number {n}", tasks=2, done=2, status=EVERY_STATUS[0].status)
    for n in range(60)
)


async def test_ticks_update_only_the_changed_age_cells_on_screen(here: Path) -> None:
    await seed_database(here / "runs.db", MANY)
    clock = FakeClock(NOW)
    app = DashboardApp("runs.db", clock=clock, animate=False, tick_interval=3600)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        table = screen.table
        assert len(table.keys) == 60
        updated: list[tuple[Any, Any]] = []
        redrawn: list[int] = []
        update_cell = table.update_cell
        refresh_view = screen.refresh_view

        def counting_update(row_key: Any, column_key: Any, *args: Any, **kwargs: Any) -> None:
            updated.append((row_key, column_key))
            update_cell(row_key, column_key, *args, **kwargs)

        def counting_refresh() -> None:
            redrawn.append(1)
            refresh_view()

        table.update_cell = counting_update  # type: ignore[method-assign]
        screen.refresh_view = counting_refresh  # type: ignore[method-assign]

        for _ in range(5):  # the clock did not move: nothing to redraw
            screen.tick()
            await pilot.pause()
        assert (updated, redrawn) == ([], [])

        clock.now = NOW + timedelta(hours=5)  # every age changes its text
        screen.tick()
        await pilot.pause()
        assert redrawn == []  # no full redraw: statuses change only with a poll
        assert {column for _, column in updated} == {"activity"}
        on_screen = table.size.height - table.header_height
        assert on_screen < len({row for row, _ in updated}) <= on_screen + 4 < 60
        assert all("h ago" in str(table.get_cell(row, "activity")) for row, _ in updated)
