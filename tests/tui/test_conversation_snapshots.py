"""What the conversation view and the detail of a model-backed run look like, at 80x24 and
160x48 (pytest-textual-snapshot), over the run convkit seeds through the real store, with a
fixed "now", no animation and no cursor blink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from convkit import RUN, seed_llm_run
from test_conversation_view import open_conversation
from textual.pilot import Pilot
from tuikit import open_detail, plain, snapshot_app, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]

Snap = Callable[..., bool]


@pytest.fixture
def llm_db(here: Path) -> str:
    asyncio.run(seed_llm_run(here / "runs.db"))
    return "runs.db"


class TestConversationScreen:
    @pytest.mark.parametrize("size", SIZES)
    def test_two_attempts(self, snap_compare: Snap, llm_db: str, size: tuple[int, int]) -> None:
        """Task t1: the task and its total on top; attempt 1 (failed, price unknown, the
        model's text with its escape sequences shown as escapes) and attempt 2 (a tool call
        with its arguments, the tool's return, the final answer), wrapped."""

        async def before(pilot: Pilot[Any]) -> None:
            await open_conversation(pilot, "t1")

        assert snap_compare(snapshot_app(llm_db), terminal_size=size, run_before=before)


class TestDetailUsage:
    @pytest.mark.parametrize("size", SIZES)
    def test_totals_and_task(self, snap_compare: Snap, llm_db: str, size: tuple[int, int]) -> None:
        """The run's total in the tasks box's title; the selected task's own usage above its
        result."""

        async def before(pilot: Pilot[Any]) -> None:
            detail = await open_detail(pilot, RUN)
            await wait_for(
                pilot,
                lambda: "enter: conversation" in plain(detail.query_one("#result")),
                what="the task's usage",
            )
            for _ in range(3):
                await pilot.pause()

        assert snap_compare(snapshot_app(llm_db), terminal_size=size, run_before=before)
