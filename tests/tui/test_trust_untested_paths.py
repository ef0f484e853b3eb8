"""Dashboard paths no test executed (issue 15, item 8): the error screen's retry, the ``f``
status cycle, ``escape`` clearing the filter, and the "no run matches" text."""

from __future__ import annotations

import shutil
from pathlib import Path

from tuikit import (
    loaded,
    plain,
    runs_screen,
    seed_database,
    shown_status,
    snapshot_app,
    wait_for,
)

from nanoagent_tui.screens.error import ErrorScreen
from nanoagent_tui.screens.runs import STATUS_FILTERS


async def test_f_cycles_every_status_then_escape_clears_the_filter(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        everything = list(screen.table.keys)
        assert everything
        seen: list[str | None] = []
        for _ in STATUS_FILTERS:
            await pilot.press("f")
            await pilot.pause()
            seen.append(app.live.filter.status)
            status = app.live.filter.status
            await wait_for(
                pilot,
                lambda status=status: all(
                    status is None or shown_status(app, key) == status for key in screen.table.keys
                ),
                what=f"only {status} rows",
            )
        # one press per filter: every status once, back to "all" at the end
        assert seen == [*STATUS_FILTERS[1:], STATUS_FILTERS[0]]
        await pilot.press("f")  # a status filter again...
        await pilot.pause()
        assert app.live.filter.active
        await pilot.press("escape")  # ...that escape clears
        await wait_for(pilot, lambda: list(screen.table.keys) == everything, what="all runs")
        assert not app.live.filter.active


async def test_a_filter_that_matches_nothing_says_how_to_clear_it(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        await pilot.press("slash")
        await pilot.press(*"zzz-no-such-run")
        await wait_for(pilot, lambda: not screen.table.keys, what="no rows")
        await wait_for(pilot, lambda: "No run matches" in plain(screen.query_one("#empty")))
        assert "escape to clear the filter" in plain(screen.query_one("#empty"))


async def test_the_error_screen_retries_and_opens_a_repaired_database(here: Path) -> None:
    good = here / "good.db"
    await seed_database(good)
    target = here / "runs.db"
    target.write_text("not a database\n" * 100)
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="error screen")
        target.unlink()
        shutil.copy(good, target)
        await pilot.press("r")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorScreen), what="retry")
        await wait_for(pilot, lambda: len(runs_screen(app).table.keys) > 0, what="the runs")
