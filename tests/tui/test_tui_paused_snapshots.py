"""The dashboard shows paused runs distinctly (``⧗ paused`` on cyan) with their reason: in the
runs table (the phase column says ``⧗ budget`` / ``⧗ approval``), and in the detail (the pause
line with how to continue). Snapshots at 80x24 and 160x48, and a Pilot check of the words."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tuikit import FakeClock, Seed, loaded, open_detail, plain, runs_screen, seed_run, shown_status
from tuikit import snapshot_app as make_app

from nanoagent_core.models import PauseReason, RunStatus
from nanoagent_core.pause import pause_step
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
Snap = Callable[..., bool]

PAUSES = {
    "budget-4f1e": (PauseReason.BUDGET, "1,204 of 1,000 tokens spent; task t3 cut short"),
    "approve-9c2d": (PauseReason.APPROVAL, "send_email to ops@example.com?"),
}


async def seed(path: Path) -> None:
    clock = FakeClock()
    store = await SQLiteStore.open(path, clock=clock)
    try:
        seeds = (
            Seed("cmp-7c1e2a", "Summarise the release notes", tasks=3, done=3,
                 status=RunStatus.COMPLETED),
            Seed("budget-4f1e", "Compare three hotel offers for Lisbon", tasks=5, done=2),
            Seed("approve-9c2d", "Email the weekly report to the ops team", tasks=4, done=1),
            Seed("run-b7f3c9", "Write a field guide to durable agent loops", tasks=6, done=2),
        )  # fmt: skip
        for one in seeds:
            run = await seed_run(store, clock, one)
            if one.run_id in PAUSES:
                reason, detail = PAUSES[one.run_id]
                clock.advance(1)
                step = pause_step(
                    reason,
                    detail,
                    phase=run.phase,
                    iteration=run.iteration,
                    current_task_id=run.current_task_id,
                )
                await store.commit_step(one.run_id, step, epoch=run.epoch)
            clock.advance(7)
    finally:
        await store.close()


@pytest.fixture
def seeded(here: Path) -> str:
    asyncio.run(seed(here / "runs.db"))
    return "runs.db"


class TestPausedRuns:
    @pytest.mark.parametrize("size", SIZES)
    def test_runs_screen(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """Two paused runs (budget, approval) stand out among completed and running ones."""
        assert snap_compare(make_app(seeded), terminal_size=size, run_before=loaded)

    @pytest.mark.parametrize("size", SIZES)
    def test_detail(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        """A run paused by its budget: the pause line with the reason and how to go on."""

        async def before(pilot: Pilot[Any]) -> None:
            await open_detail(pilot, "budget-4f1e")

        assert snap_compare(make_app(seeded), terminal_size=size, run_before=before)


async def test_the_table_and_the_detail_say_paused_and_why(seeded: str) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        assert isinstance(app, DashboardApp)
        assert shown_status(app, "budget-4f1e") == "paused"
        assert shown_status(app, "approve-9c2d") == "paused"
        assert shown_status(app, "run-b7f3c9") == "running"
        table = runs_screen(app).table
        assert getattr(table.row("budget-4f1e"), "phase") == "⧗ budget"  # noqa: B009
        assert getattr(table.row("approve-9c2d"), "phase") == "⧗ approval"  # noqa: B009
        screen = await open_detail(pilot, "budget-4f1e")
        texts = [plain(w) for w in screen.query("Static") if hasattr(w, "content")]
        joined = "\n".join(texts)
        assert "⧗ paused: budget: 1,204 of 1,000 tokens spent" in joined
        assert "nanoagent resume budget-4f1e --max-tokens N" in joined
