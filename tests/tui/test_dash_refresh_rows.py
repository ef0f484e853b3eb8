"""A poll that changes one run rebuilds only that run's row and moves it in the sort order
(issue 13: the refresh after one change must not cost O(rows shown)). Counted through
``run_row`` calls, not timed."""

from __future__ import annotations

from pathlib import Path

import pytest
from tuikit import loaded, runs_screen, shown_status, wait_for

from nanoagent_core.models import RunState, RunStatus, validated
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.formatting import RunRow, run_sort_key
from nanoagent_tui.screens import runs as runs_module

IDS = [f"r-{n:02d}" for n in range(12)]


async def enqueue(path: Path) -> None:
    store = await SQLiteStore.open(path)
    try:
        for run_id in IDS:  # one after the other: each newer than the one before
            run = validated(
                RunState, run_id=run_id, goal=f"goal {run_id}", max_iterations=5,
                status=RunStatus.QUEUED,
            )  # fmt: skip
            await store.create_run(run)
    finally:
        await store.close()


async def abort(path: Path, run_id: str) -> None:
    """A change to one run: it ends aborted, its activity now."""
    store = await SQLiteStore.open(path)
    try:
        run = await store.get_run(run_id)
        await store.abort_unowned(run_id, expected_epoch=run.epoch, reason="test")
    finally:
        await store.close()


@pytest.mark.parametrize("descending", [True, False], ids=["newest-first", "oldest-first"])
async def test_one_changed_run_rebuilds_and_moves_only_its_row(
    here: Path, monkeypatch: pytest.MonkeyPatch, descending: bool
) -> None:
    await enqueue(here / "runs.db")
    built: list[str] = []
    real_run_row = runs_module.run_row

    def counting_run_row(*args: object, **kwargs: object) -> RunRow:
        row = real_run_row(*args, **kwargs)  # type: ignore[arg-type]
        built.append(row.run_id)
        return row

    monkeypatch.setattr(runs_module, "run_row", counting_run_row)
    app = DashboardApp("runs.db", animate=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        screen.sort_by = ("activity", descending)
        await pilot.pause()
        table = screen.table
        newest_first = list(reversed(IDS))
        assert table.keys == (newest_first if descending else IDS)
        assert len(built) >= len(IDS)  # the whole view was drawn (a sort change)
        built.clear()
        polls = app.updates

        await abort(here / "runs.db", "r-03")
        app.request_poll()
        await wait_for(pilot, lambda: shown_status(app, "r-03") == "aborted", what="r-03 aborted")
        await wait_for(pilot, lambda: app.updates > polls, what="the poll that brought it")
        await pilot.pause()

        # only the changed run's row was built again, however many rows are shown
        assert built
        assert set(built) == {"r-03"}, built
        # ... and it moved: now the newest activity, at the top (bottom when oldest first)
        others = [key for key in newest_first if key != "r-03"]
        expected = ["r-03", *others] if descending else [*reversed(others), "r-03"]
        assert table.keys == expected
        # the same order a full redraw gives
        now = app.clock()
        full = sorted(
            app.live.visible(now, app.sort), key=run_sort_key("activity"), reverse=descending
        )
        assert table.keys == [run.run_id for run, _ in full]
        assert table.row("r-03") is not None
        assert getattr(table.row("r-03"), "status") == "aborted"  # noqa: B009
