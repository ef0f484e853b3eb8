"""Keys typed ahead of a dialog (issue 14 item 6): the new-run form gets every key typed
right after ``n``; a confirmation never takes a key typed before it was drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot
from textual.widgets import Input
from tuikit import EVERY_STATUS, loaded, runs_screen, seed_database, snapshot_app, wait_for

from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.screens.dialogs import ConfirmScreen
from nanoagent_tui.screens.new_run import NewRunScreen

RUNNING = "run-b7f3c9"


def type_at_once(pilot: Pilot[Any], keys: str) -> None:
    """Every key of ``keys`` queued at once, as a fast typist's terminal delivers them (no
    pause for the app to handle one before the next arrives)."""
    for char in keys:
        key = "space" if char == " " else char
        pilot.app.post_message(events.Key(key, char))


async def _abort_requested(path: Path, run_id: str) -> bool:
    store = await SQLiteStore.open(path, create=False)
    try:
        return (await store.get_run(run_id)).abort_requested_at is not None
    finally:
        await store.close()


async def test_n_then_fast_typing_fills_the_goal_and_aborts_nothing(here: Path) -> None:
    await seed_database(here / "runs.db", EVERY_STATUS[-1:])
    app = snapshot_app("runs.db")
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to(RUNNING)
        type_at_once(pilot, "nadd a delay ay")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what="the form")
        form = app.screen
        goal = form.query_one("#goal", Input)
        await wait_for(
            pilot, lambda: goal.value == "add a delay ay", what=f"the whole goal ({goal.value!r})"
        )
        await pilot.pause()
        assert app.screen is form
        assert not any(isinstance(s, ConfirmScreen) for s in app.screen_stack)
    assert not await _abort_requested(here / "runs.db", RUNNING)


async def test_a_confirmation_ignores_keys_typed_before_it_was_shown(here: Path) -> None:
    await seed_database(here / "runs.db", EVERY_STATUS[-1:])
    app = snapshot_app("runs.db")
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to(RUNNING)
        type_at_once(pilot, "ay")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the dialog")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # still asking: the early y was ignored
        await pilot.press("y")  # typed once it was shown: taken
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await wait_for(
            pilot, lambda: app.live.runs[RUNNING].abort_requested_at is not None, timeout=30
        )
    assert await _abort_requested(here / "runs.db", RUNNING)
