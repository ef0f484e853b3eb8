"""What each screen looks like, at 80x24 and 160x48 (pytest-textual-snapshot).

Every app is built over a database seeded through the real store, with a fixed "now", no
animation and no cursor blink; the database is named relative to the test's own directory
so that the path on screen is the same everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tuikit import (
    loaded,
    open_detail,
    plain,
    runs_screen,
    seed_database,
    snapshot_app,
    wait_for,
)

from nanoagent_tui.app import DashboardApp
from nanoagent_tui.screens.dialogs import ConfirmScreen, HelpScreen
from nanoagent_tui.screens.error import ErrorScreen
from nanoagent_tui.screens.new_run import NewRunScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]

Snap = Callable[..., bool]
Before = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture
def seeded(here: Path) -> str:
    asyncio.run(seed_database(here / "runs.db"))
    return "runs.db"


def _app(pilot: Pilot[Any]) -> DashboardApp:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    return app


class TestRunsScreen:
    @pytest.mark.parametrize("size", SIZES)
    def test_every_status(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """running, aborting, crashed (reversed red), failed, interrupted, aborted and
        completed runs, newest activity first, with the counts per status on top."""
        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=loaded)

    @pytest.mark.parametrize("size", SIZES)
    def test_empty_state(self, snap_compare: Snap, here: Path, size: tuple[int, int]) -> None:
        """No database file: how to start (nanoagent demo, nanoagent run, n)."""
        assert snap_compare(snapshot_app("missing.db"), terminal_size=size, run_before=loaded)

    @pytest.mark.parametrize("size", SIZES)
    def test_filter_applied(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """'/' then 'data': only the runs whose id or goal holds it."""

        async def before(pilot: Pilot[Any]) -> None:
            await loaded(pilot)
            await pilot.press("slash", *"data", "enter")
            app = _app(pilot)
            await wait_for(
                pilot,
                lambda: (
                    app.live.filter.text == "data"
                    and runs_screen(app).table.keys == ["crash-e02d5b"]
                ),
                what="the filtered list",
            )

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)


class TestDetailScreen:
    @pytest.mark.parametrize("size", SIZES)
    def test_running(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """Goal, ids, worker, phase strip with executing lit, tasks with the in-flight one
        marked and selected, its result pane, the events, the durations sparkline."""

        async def before(pilot: Pilot[Any]) -> None:
            await open_detail(pilot, "run-b7f3c9")

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)

    @pytest.mark.parametrize("size", SIZES)
    def test_crashed(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """A crashed run: the dead worker, and the task that was in flight when it died."""

        async def before(pilot: Pilot[Any]) -> None:
            await open_detail(pilot, "crash-e02d5b")

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)

    @pytest.mark.parametrize("size", SIZES)
    def test_failed(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """A failed run: its error and its failing task (selected, with its last error)."""

        async def before(pilot: Pilot[Any]) -> None:
            await open_detail(pilot, "fail-3be1c7")

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)


class TestDialogs:
    @pytest.mark.parametrize("size", SIZES)
    def test_abort_confirmation(
        self, snap_compare: Snap, seeded: str, size: tuple[int, int]
    ) -> None:
        """'a' on a running run asks first (y / n / escape)."""

        async def before(pilot: Pilot[Any]) -> None:
            await loaded(pilot)
            app = _app(pilot)
            assert runs_screen(app).table.move_to("run-b7f3c9")
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)

    @pytest.mark.parametrize("size", SIZES)
    def test_new_run_form(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """'n': goal, agent, max iterations, options; a bad option is shown in the form."""

        async def before(pilot: Pilot[Any]) -> None:
            await loaded(pilot)
            app = _app(pilot)
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen))
            await pilot.press(*"Index the wiki")
            app.screen.query_one("#options", Input).value = "tasks=many"
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: (
                    "tasks must be a whole number" in plain(app.screen.query_one("#form-error"))
                ),
                what="the form's error",
            )

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)

    @pytest.mark.parametrize("size", SIZES)
    def test_help(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        async def before(pilot: Pilot[Any]) -> None:
            await loaded(pilot)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(_app(pilot).screen, HelpScreen))

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)

    @pytest.mark.parametrize("size", SIZES)
    def test_bad_database(self, snap_compare: Snap, here: Path, size: tuple[int, int]) -> None:
        """A text file: an error screen with the message, not a traceback."""
        (here / "notes.db").write_text("shopping list\n- milk\n- eggs\n" * 50)

        async def before(pilot: Pilot[Any]) -> None:
            await wait_for(pilot, lambda: isinstance(_app(pilot).screen, ErrorScreen))
            await pilot.pause()

        assert snap_compare(snapshot_app("notes.db"), terminal_size=size, run_before=before)
