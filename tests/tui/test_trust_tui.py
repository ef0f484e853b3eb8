"""The dashboard against hostile stored text and a busy run (issue 9, items 2 and 8).

* Item 2: every text from the database (goal, tasks, results, errors, options, events, host
  names) is drawn with its control characters escaped, in every screen, in notifications
  and on the error screen; markup in stored text shows as written. What is checked is what
  Textual would write to the terminal: the screen's full compositor update, rendered to the
  escape sequences a real driver writes.
* Item 8: live updates reach a screen only once its widgets are mounted; opening and closing
  a busy run's detail 20 times (200 in the slow run), with a poll result delivered between
  ``push_screen`` and the mount each time, leaves the app up and the detail following its run.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.widgets import RichLog
from textual.widgets._toast import Toast
from tuikit import LONG_LEASE, live_owner, loaded, runs_screen, wait_for

from nanoagent_core.models import (
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
    validated,
)
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.safetext import visible
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui import live
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.live import Update
from nanoagent_tui.screens.detail import DetailScreen
from nanoagent_tui.screens.error import ErrorScreen
from nanoagent_tui.screens.runs import RunsScreen

#: Sets the terminal's title, rings the bell, clears the screen.
TITLE = "title \x1b]0;X\x07 ok \x1b[2J"
#: C1 CSI (red), DEL, a right-to-left override, a zero-width space.
ODD = "c1 \x9b31m del \x7f rlo \u202eevil\u202c zw\u200b end"
#: Markup that Rich or Textual would act on if stored text were read as markup.
MARKUP = "[bold red]x[/] [link=https://example.com]y[/link]"
#: What must never be in stored text's share of the output.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
#: How many times the detail is opened and closed in the default run. The race is forced on
#: every opening, so the old dashboard failed at the first; five still close a detail while
#: the next opens several times over (the watched-run check after them). Each round trip
#: costs seconds of a loaded machine: ``-m slow`` adds a run of 200.
TOGGLES = int(os.environ.get("NANOAGENT_TEST_TOGGLES", "5"))
#: The sequences Textual itself writes: styles (SGR) and cursor moves.
OWN_SEQUENCES = re.compile(r"\x1b\[[0-9;:]*[mH]")


async def _seed_hostile(db: Path) -> None:
    """A failed run whose every stored text is hostile, and a running one held by a worker on
    a host with a hostile name, written as workers write them."""
    store = await SQLiteStore.open(db)
    try:
        await store.create_run(
            validated(
                RunState,
                run_id="evil",
                goal=f"{MARKUP} {TITLE} {ODD}",
                max_iterations=5,
                agent="demo",
                agent_options={"opt": TITLE, "note": f"{ODD} {MARKUP}"},
            )
        )
        gone = Owner(host=f"host{TITLE}", pid=99_999_999, pid_started=1.0)
        claimed = await store.claim_run("evil", gone, expected_epoch=0, lease_seconds=60.0)
        failed = Task(
            id="t1",
            description=f"describe {TITLE} {MARKUP}",
            seq=1,
            attempts=3,
            failures=3,
            status=TaskStatus.FAILED,
            error=f"error {ODD}",
        )
        done = Task(
            id="t2",
            description=f"second {ODD}",
            seq=2,
            attempts=1,
            status=TaskStatus.DONE,
            result=f"result {TITLE}\nline two {MARKUP}",
        )
        await store.commit_step(
            "evil",
            Step(
                phase=Phase.EXECUTING,
                iteration=1,
                current_task_id="t1",
                tasks=(failed, done),
                results={"t2": f"result {TITLE}\nline two {MARKUP}"},
                events=(
                    NewEvent(
                        kind=EventKind.TASK_DONE,
                        data={"task_id": "t2", "result": f"{TITLE} {MARKUP}", "seconds": 0.5},
                    ),
                    NewEvent(kind=f"odd{TITLE}", data={f"k{ODD}": f"v{TITLE}"}),
                ),
            ),
            epoch=claimed.epoch,
        )
        await store.commit_step(
            "evil",
            Step(
                phase=Phase.EXECUTING,
                iteration=1,
                current_task_id="t1",
                status=RunStatus.FAILED,
                error=f"failed: {TITLE} {MARKUP}",
                events=(NewEvent(kind=EventKind.RUN_FAILED, data={"error": TITLE}),),
            ),
            epoch=claimed.epoch,
        )
        await store.create_run(
            validated(RunState, run_id="held", goal=f"held {TITLE}", max_iterations=5)
        )
        far = Owner(host=f"far{TITLE}", pid=1, pid_started=1.0)
        await store.claim_run("held", far, expected_epoch=0, lease_seconds=LONG_LEASE)
    finally:
        await store.close()


def _terminal(app: DashboardApp) -> tuple[str, str]:
    """(the text of every segment on screen, what a terminal driver would be sent)."""
    update = app.screen._compositor.render_full_update()
    texts = "".join(
        segment.text
        for line in update.strips
        for strip in line
        for segment in strip
        if not segment.control
    )
    return texts, update.render_segments(app.console)


def _assert_clean(app: DashboardApp, where: str) -> str:
    texts, written = _terminal(app)
    found = RAW.search(texts)
    assert found is None, f"{where}: raw {found.group()!r} on screen"
    rest = OWN_SEQUENCES.sub("", written)
    found = RAW.search(rest)
    assert found is None, f"{where}: {found.group()!r} sent to the terminal"
    return texts


async def test_hostile_text_is_escaped_on_every_screen(here: Path) -> None:
    await _seed_hostile(here / "evil.db")
    app = DashboardApp("evil.db", animate=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await loaded(pilot)
        table = runs_screen(app).table
        await wait_for(pilot, lambda: table.row("evil") is not None, what="the hostile run")
        await pilot.pause()
        shown = _assert_clean(app, "runs screen")
        assert "[bold red]x[/]" in shown  # markup shown as written, not applied
        assert "\\x1b]0;X\\x07" in shown  # the goal's escapes shown, escaped

        # A notification quoting stored text: resume refuses a run that is running, naming
        # its worker's host.
        assert table.move_to("held")
        await pilot.pause()
        app.action_resume()  # the palette's way: r is dimmed for a running run
        await wait_for(pilot, lambda: bool(app.screen.query(Toast)), what="a notification")
        await pilot.pause()
        shown = _assert_clean(app, "notification")
        assert f"far{visible(TITLE)}"[:20] in shown

        # The detail: info, failure box, tasks, result pane, event log.
        assert table.move_to("evil")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, DetailScreen)
                and app.screen.detail is not None
                and len(app.screen.query_one("#events", RichLog).lines) >= 3
            ),
            what="the hostile run's detail and events",
        )
        await pilot.pause()
        shown = _assert_clean(app, "detail screen")
        assert "[bold red]x[/]" in shown
        assert "\\u202e" in shown
        await pilot.press("down")  # the done task: its result in the result pane
        await pilot.pause()
        shown = _assert_clean(app, "detail screen, second task")
        assert "[link=https://example.com]y[/link]" in shown

        # The error screen quotes what the database said.
        await app.push_screen(ErrorScreen(f"here{TITLE}", f"damaged: {TITLE} {MARKUP}"))
        await pilot.pause()
        shown = _assert_clean(app, "error screen")
        assert "damaged: title \\x1b]0;X\\x07" in shown
        assert "[bold red]x[/]" in shown


# -- item 8 ----------------------------------------------------------------------------------


class EagerDetailApp(DashboardApp):
    """Delivers the latest poll result that had events right after pushing the detail
    screen, before Textual mounts its widgets: the race the dashboard lost under load
    (``NoMatches: No nodes match '#events' on DetailScreen()``), made to happen every time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latest = Update()

    def _dispatch(self, update: Update) -> None:
        if update.events:
            self.latest = update
        super()._dispatch(update)

    def open_detail(self, run_id: str) -> None:
        super().open_detail(run_id)
        self._dispatch(self.latest)


async def _busy_run(db: Path) -> tuple[SQLiteStore, int]:
    """A running run held by a live worker (pid 1); the store and epoch to write with."""
    store = await SQLiteStore.open(db)
    await store.create_run(validated(RunState, run_id="busy", goal="keep busy", max_iterations=5))
    claimed = await store.claim_run(
        "busy", live_owner(), expected_epoch=0, lease_seconds=LONG_LEASE
    )
    return store, claimed.epoch


async def _write_events(store: SQLiteStore, epoch: int, stop: asyncio.Event) -> int:
    """Commit steps with events until ``stop``; the number committed."""
    written = 0
    while not stop.is_set():
        written += 1
        await store.commit_step(
            "busy",
            Step(
                phase=Phase.EXECUTING,
                iteration=1,
                events=(NewEvent(kind=EventKind.NOTE, data={"n": written}),),
            ),
            epoch=epoch,
        )
        await asyncio.sleep(0.02)  # pacing: about 50 events a second
    return written


async def _key(app: DashboardApp, key: str, done: Callable[[], bool], what: str) -> None:
    """Send ``key`` as the terminal would and wait until ``done()``. (Not ``pilot.press``:
    it waits for the process to be idle, which a busy run's dashboard never is, so each press
    took its one-second cap.)"""
    app.post_message(events.Key(key, "\r" if key == "enter" else None))
    deadline = time.monotonic() + 30.0
    while not done():
        assert app.is_running, f"the app stopped after {key}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.002)


async def _toggle(app: DashboardApp, times: int) -> None:
    """enter, escape: ``times`` times, without waiting for the detail to be drawn."""
    for _ in range(times):
        assert runs_screen(app).table.move_to("busy")
        await _key(app, "enter", lambda: isinstance(app.screen, DetailScreen), "the detail")
        await _key(app, "escape", lambda: isinstance(app.screen, RunsScreen), "the runs")


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "toggles", [TOGGLES, pytest.param(200, marks=pytest.mark.slow)], ids=lambda n: f"{n}x"
)
async def test_detail_opened_and_closed_many_times_on_a_busy_run(
    here: Path, monkeypatch: pytest.MonkeyPatch, toggles: int
) -> None:
    # Each opening loads the run's last events into the log; a shorter log keeps many openings
    # cheap on a loaded machine (the race does not depend on its length).
    monkeypatch.setattr(live, "DETAIL_EVENTS", 200)
    store, epoch = await _busy_run(here / "busy.db")
    stop = asyncio.Event()
    writer = asyncio.create_task(_write_events(store, epoch, stop))
    try:
        app = EagerDetailApp("busy.db", animate=False, poll_interval=0.01)
        async with app.run_test(size=(140, 40)) as pilot:
            await loaded(pilot)
            await wait_for(pilot, lambda: app.latest.events != (), what="a poll with events")
            await _toggle(app, toggles)
            assert app.is_running
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="runs")

            # Opened once more, the detail still follows its run (a closing detail screen
            # did not stop the new one's run being watched).
            assert runs_screen(app).table.move_to("busy")
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: (
                    isinstance(app.screen, DetailScreen)
                    and app.screen.detail is not None
                    and app.live.watched == "busy"
                ),
                what="the detail of the busy run",
            )
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            seen = screen.last_event
            await wait_for(
                pilot, lambda: screen.last_event > seen, what="new events in the open detail"
            )
            assert app.is_running
    finally:
        stop.set()
        written = await writer
        await store.close()
    assert written > 0
