"""The detail screen's info grid follows the terminal's size: opened at one width and then
resized, its labels stay whole (they were cut to ``sta…``, ``wor…`` when the terminal shrank
from 120 to 80 columns while a detail was open: the grid was built for a width other than
the one it was drawn at, and a value line wider than the room made Rich shrink every
column, the labels too)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import Static
from tuikit import EVERY_STATUS, Seed, open_detail, seed_database, snapshot_app, wait_for

from nanoagent_tui.screens.detail import DetailScreen

LABELS = ("goal", "status", "agent", "worker", "times")
#: Longer than 80 columns, shorter than 160 (whole at 160, cut at 80).
GOAL = (
    "Survey every open issue in the tracker, triage each by area and severity, "
    "then write the weekly summary"
)
#: A run whose goal and options fit 120 columns but not 80.
WIDE = Seed(
    "wide-5e7d21",
    GOAL,
    tasks=6,
    done=2,
    options=(
        ("tasks", "5"),
        ("delay", "0.05"),
        ("topic", "the release notes of the spring release and the migration guide"),
    ),
)


@pytest.fixture
def seeded(here: Path) -> str:
    asyncio.run(seed_database(here / "runs.db", (*EVERY_STATUS, WIDE)))
    return "runs.db"


def _info_lines(screen: DetailScreen) -> list[str]:
    """The info grid as it is drawn on screen now: one string per line."""
    info = screen.query_one("#info", Static)
    width, height = info.size
    return [strip.text for strip in info.render_lines(Region(0, 0, width, height))]


def _labels(lines: list[str]) -> list[str]:
    """The first word of each line (the label column)."""
    return [line.split()[0] for line in lines if line.strip()]


async def _settle(pilot: Pilot[Any], width: int) -> DetailScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.size.width == width, what=f"width {width}")
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    return screen


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param((120, 32), (80, 24), id="shrink-120-to-80"),
        pytest.param((80, 24), (160, 48), id="grow-80-to-160"),
    ],
)
async def test_labels_whole_after_resize(
    seeded: str, before: tuple[int, int], after: tuple[int, int]
) -> None:
    app = snapshot_app(seeded)
    async with app.run_test(size=before) as pilot:
        screen = await open_detail(pilot, WIDE.run_id)
        assert set(LABELS) <= set(_labels(_info_lines(screen)))
        await pilot.resize_terminal(*after)
        screen = await _settle(pilot, after[0])
        lines = _info_lines(screen)
        text = "\n".join(lines)
        assert "…" not in " ".join(line[:8] for line in lines), text
        labels = _labels(lines)
        for label in LABELS:
            assert label in labels, f"{label!r} not whole in:\n{text}"
        if after[0] >= 160:
            # built for the new width: the goal is no longer cut for the old one
            assert GOAL in " ".join(" ".join(line.split()) for line in lines), text
        else:
            assert "topic=the release notes" in text, text  # the value shows, cut at the edge
