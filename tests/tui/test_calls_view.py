"""The detail screen's view of the plan and reflections (issue 11, real agents): what the
planner's and reflector's journaled calls spent, under the tasks box, and ``p`` opens their
conversations like a task's, every text literal. Over a database an offline ``llm`` run
(TestModel) wrote through the real SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets._footer import FooterKey
from tuikit import open_detail, plain, snapshot_app, wait_for

from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.worker import resume_run
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.screens.conversation import ConversationScreen
from nanoagent_tui.screens.detail import DetailScreen
from nanoagent_tui.widgets.footer import KeyFooter

RUN = "llm-calls"


async def _seed(path: Path) -> None:
    store = await SQLiteStore.open(path)
    try:
        await store.create_run(
            RunState(run_id=RUN, goal="Plan a trip", max_iterations=20, agent="llm",
                     agent_options={"model": "test"})
        )  # fmt: skip
        final = await resume_run(store, RUN, handle_signals=False)
        assert final.status is RunStatus.COMPLETED
    finally:
        await store.close()


@pytest.fixture
def calls_db(here: Path) -> str:
    asyncio.run(_seed(here / "runs.db"))
    return "runs.db"


def _footer_actions(screen: DetailScreen) -> list[str]:
    """The actions of the keys the detail's footer shows, enabled ones only."""
    footer = screen.query_one(KeyFooter)
    return [key.action for key in footer.query(FooterKey) if not key.has_class("-disabled")]


async def _detail(pilot: Pilot[Any]) -> DetailScreen:
    detail = await open_detail(pilot, RUN)
    middle = detail.query_one("#middle")
    await wait_for(pilot, lambda: "plan and reflections" in str(middle.border_subtitle),
                   what="the plan's usage")  # fmt: skip
    return detail


async def test_the_detail_shows_the_plans_usage_and_p_opens_its_conversation(calls_db: str):
    app = snapshot_app(calls_db)
    async with app.run_test(size=(160, 48)) as pilot:
        detail = await _detail(pilot)
        subtitle = str(detail.query_one("#middle").border_subtitle)
        assert subtitle.startswith("plan and reflections · 3 requests · ")
        assert subtitle.endswith("cost unknown · p: conversation")
        await wait_for(pilot, lambda: "plan" in _footer_actions(detail), what="p in the footer")
        await pilot.press("p")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ConversationScreen) and app.screen.calls is not None,
            what="the plan's conversation",
        )
        for _ in range(3):
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConversationScreen)
        text = plain(screen.query_one("#parts"))
        assert text.index("planner, iteration 0, call 1  done") < text.index("reflector, iteration")
        assert "Split this goal into at most" in text
        assert "Is the goal achieved?" in text
        assert "tool call final_result" in text
        assert "Gather what is known about Plan a trip" in text
        line = plain(screen.query_one("#task"))
        assert "the plan and reflections" in line
        assert "3 journaled calls" in line
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail")
        assert isinstance(app, DashboardApp)


async def test_a_run_without_a_journaled_plan_shows_no_plan_key(here: Path) -> None:
    """A demo run (no model calls): no ``p`` in the footer, and ``p`` opens nothing."""
    store = await SQLiteStore.open(here / "demo.db")
    try:
        await store.create_run(RunState(run_id="plain", goal="No model", max_iterations=5))
        await resume_run(store, "plain", handle_signals=False)
    finally:
        await store.close()
    app = snapshot_app("demo.db")
    async with app.run_test(size=(160, 48)) as pilot:
        detail = await open_detail(pilot, "plain")
        await wait_for(pilot, lambda: "back" in _footer_actions(detail), what="the footer")
        assert "plan" not in _footer_actions(detail)
        await pilot.press("p")
        for _ in range(3):
            await pilot.pause()
        assert app.screen is detail
