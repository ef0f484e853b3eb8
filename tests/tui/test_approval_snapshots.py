"""What a run waiting for approval looks like, at 80x24 and 160x48: in the list (paused, with
its reason) and in its detail (the request: what, the arguments pretty-printed, why, and the
keys that decide it); and the deny dialog."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from approvalkit import PAUSED_ID, seed_paused
from textual.pilot import Pilot
from tuikit import loaded, open_detail, snapshot_app, wait_for

from nanoagent_tui.screens.approval import DenyScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]

Snap = Callable[..., bool]


@pytest.fixture
def seeded(here: Path) -> str:
    asyncio.run(seed_paused(here / "runs.db"))
    return "runs.db"


class TestApproval:
    @pytest.mark.parametrize("size", SIZES)
    def test_paused_run_in_the_list(
        self, snap_compare: Snap, seeded: str, size: tuple[int, int]
    ) -> None:
        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=loaded)

    @pytest.mark.parametrize("size", SIZES)
    def test_paused_run_detail(
        self, snap_compare: Snap, seeded: str, size: tuple[int, int]
    ) -> None:
        async def before(pilot: Pilot[Any]) -> None:
            await open_detail(pilot, PAUSED_ID)

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)

    @pytest.mark.parametrize("size", SIZES)
    def test_deny_dialog(self, snap_compare: Snap, seeded: str, size: tuple[int, int]) -> None:
        async def before(pilot: Pilot[Any]) -> None:
            await open_detail(pilot, PAUSED_ID)
            await pilot.pause(0.2)
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, DenyScreen), what="dialog")
            await pilot.pause()

        assert snap_compare(snapshot_app(seeded), terminal_size=size, run_before=before)
