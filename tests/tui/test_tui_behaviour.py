"""The dashboard driven with Pilot against real databases, real detached workers and real
other processes. Every wait is a bounded loop on a condition."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, OptionList
from tuikit import (
    EVERY_STATUS,
    NOW,
    Seed,
    loaded,
    plain,
    runs_screen,
    seed_database,
    seed_live,
    shown_status,
    snapshot_app,
    wait_for,
)

from nanoagent_core.actions import new_run, start_detached
from nanoagent_core.models import RunStatus
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.live import Health
from nanoagent_tui.screens.detail import DetailScreen
from nanoagent_tui.screens.dialogs import ConfirmScreen, HelpScreen
from nanoagent_tui.screens.new_run import NewRunScreen
from nanoagent_tui.widgets.keyed_table import KeyedTable
from nanoagent_tui.widgets.top_bar import TopBar

FAST = (("tasks", "3"), ("delay", "0.05"), ("followups", "0"))


class RecordingApp(DashboardApp):
    """Keeps the notifications it showed, for the tests to read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.said.append(message)
        super().notify(message, *args, **kwargs)


async def _run(path: Path, run_id: str) -> Any:
    store = await SQLiteStore.open(path, create=False)
    try:
        return await store.get_run(run_id)
    finally:
        await store.close()


async def test_r_on_a_crashed_run_resumes_it_to_completed(here: Path) -> None:
    db = here / "runs.db"
    await seed_live(
        db, (Seed("crash-1", "Draft the plan", tasks=3, done=1, dead=True, options=FAST),)
    )
    app = RecordingApp(str(db), animate=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot)
        assert shown_status(app, "crash-1") == "crashed"
        assert runs_screen(app).table.move_to("crash-1")
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: shown_status(app, "crash-1") == "completed",
            timeout=30,
            what="the resumed run to complete on screen",
        )
        assert any("resuming crash-1 in worker pid" in said for said in app.said)
    run = await _run(db, "crash-1")
    assert run.status is RunStatus.COMPLETED
    assert run.epoch == 2  # claimed once more, by the worker the dashboard started
    assert run.tasks_done == 3


async def test_a_then_y_on_a_running_run_ends_it_aborted(here: Path, workers: list[int]) -> None:
    db = here / "runs.db"
    store = await SQLiteStore.open(db)
    try:
        run = new_run("long-1", "Survey everything", options={"tasks": "5", "delay": "30"})
        workers.append(await start_detached(store, str(db), run, heartbeat=1.0))
    finally:
        await store.close()
    app = RecordingApp(str(db), animate=False)
    seen: list[str] = []

    def status_is(word: str) -> bool:
        status = shown_status(app, "long-1")
        if status and (not seen or seen[-1] != status):
            seen.append(status)
        return status == word

    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot)
        await wait_for(
            pilot,
            lambda: status_is("running") and app.live.runs["long-1"].owner is not None,
            timeout=20,
            what="the worker to claim the run",
        )
        assert runs_screen(app).table.move_to("long-1")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: status_is("aborted"), timeout=20, what="aborted on screen")
    assert seen[-1] == "aborted"
    run = await _run(db, "long-1")
    assert run.status is RunStatus.ABORTED
    assert run.abort_requested_at is not None
    assert run.error is not None
    assert "aborted on request" in run.error


async def test_n_then_no_on_the_confirmation_aborts_nothing(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to("run-b7f3c9")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
    assert (await _run(here / "runs.db", "run-b7f3c9")).abort_requested_at is None


_OTHER_PROCESS = """
import asyncio, sys
from datetime import timedelta
from nanoagent_core.actions import abort_run
from nanoagent_core.models import RunState, utc_now
from nanoagent_core.sqlite import SQLiteStore

async def main():
    store = await SQLiteStore.open(sys.argv[1], create=False)
    try:
        await abort_run(store, "int-9a44f0")
        await store.create_run(RunState(run_id="ext-1", goal="Made elsewhere", max_iterations=5,
                                        lease_expires_at=utc_now() + timedelta(days=3650)))
    finally:
        await store.close()

asyncio.run(main())
"""


async def test_a_change_from_another_process_shows_without_input(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await loaded(pilot)
        assert shown_status(app, "int-9a44f0") == "interrupted"
        assert shown_status(app, "ext-1") is None
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _OTHER_PROCESS, str(here / "runs.db")
        )
        assert await asyncio.wait_for(other.wait(), 30) == 0
        await wait_for(
            pilot,
            lambda: (
                shown_status(app, "int-9a44f0") == "aborted"
                and shown_status(app, "ext-1") == "running"
            ),
            what="the other process's changes",
        )
        # the new run has the newest activity: it is on top
        assert runs_screen(app).table.keys[0] == "ext-1"


async def test_a_killed_worker_shows_crashed_within_a_second(
    here: Path, workers: list[int]
) -> None:
    db = here / "runs.db"
    store = await SQLiteStore.open(db)
    try:
        run = new_run("victim", "Run until killed", options={"tasks": "5", "delay": "30"})
        workers.append(await start_detached(store, str(db), run))
    finally:
        await store.close()
    app = DashboardApp(str(db), animate=False)
    async with app.run_test() as pilot:
        await loaded(pilot)
        await wait_for(
            pilot,
            lambda: (
                app.live.runs.get("victim") is not None
                and app.live.runs["victim"].owner is not None
            ),
            timeout=20,
            what="the worker to claim the run",
        )
        assert shown_status(app, "victim") == "running"
        owner = app.live.runs["victim"].owner
        assert owner is not None
        os.kill(owner.pid, signal.SIGKILL)
        # how soon is a figure for bench/dashboard.py; here only that it is shown
        await wait_for(pilot, lambda: shown_status(app, "victim") == "crashed", timeout=60)


async def test_resume_of_a_run_that_needs_none_says_why_and_writes_nothing(here: Path) -> None:
    await seed_database(here / "runs.db")
    before = (here / "runs.db").read_bytes()
    app = RecordingApp("runs.db", clock=lambda: NOW, animate=False)
    async with app.run_test(notifications=True) as pilot:
        await loaded(pilot)
        for run_id, why in (
            ("cmp-7c1e2a", "has completed: nothing to resume"),
            ("run-b7f3c9", "is running (pid 1 on test-host): nothing to resume"),
            ("stop-44aa10", "is being aborted"),
        ):
            assert runs_screen(app).table.move_to(run_id)
            await pilot.pause()
            # the key is dimmed in the footer (issue 14 item 3): pressing it does nothing;
            # the command palette still runs the action, which says why not
            assert app.check_action("resume", ()) is None
            await pilot.press("r")
            app.action_resume()
            await wait_for(pilot, lambda w=why: any(w in said for said in app.said), what=why)
        assert runs_screen(app).table.move_to("cmp-7c1e2a")
        await pilot.pause()
        assert app.check_action("abort", ()) is None
        await pilot.press("a")
        assert not isinstance(app.screen, ConfirmScreen)
        app.action_abort()
        await wait_for(pilot, lambda: any("nothing to abort" in said for said in app.said))
        assert not isinstance(app.screen, ConfirmScreen)
    assert (here / "runs.db").read_bytes() == before


async def test_cursor_stays_on_its_run_through_updates_and_resorts(here: Path) -> None:
    """A run below the cursor gets new activity and moves to the top: the cursor stays on
    the run it was on; no update ever reloads the table whole."""
    await seed_database(here / "runs.db")
    clears: list[int] = []
    original = KeyedTable.clear

    def counting_clear(self: KeyedTable, columns: bool = False) -> KeyedTable:
        clears.append(1)
        return original(self, columns)

    app = snapshot_app("runs.db")
    async with app.run_test(size=(160, 30)) as pilot:
        await loaded(pilot)
        table = runs_screen(app).table
        assert table.move_to("crash-e02d5b")
        await pilot.pause()
        KeyedTable.clear = counting_clear  # type: ignore[method-assign]
        try:
            store = await SQLiteStore.open(here / "runs.db", create=False)
            try:
                await store.request_abort("run-b7f3c9")
                run = await store.get_run("int-9a44f0")
                await store.abort_unowned("int-9a44f0", expected_epoch=run.epoch, reason="t")
            finally:
                await store.close()
            await wait_for(
                pilot,
                lambda: (
                    table.keys[0] == "int-9a44f0" and shown_status(app, "run-b7f3c9") == "aborting"
                ),
                what="the re-sorted table",
            )
            assert table.cursor_key == "crash-e02d5b"
            for key in ("s", "s", "S", "s"):  # sort by other columns, either way
                await pilot.press(key)
                assert table.cursor_key == "crash-e02d5b"
        finally:
            KeyedTable.clear = original  # type: ignore[method-assign]
        assert clears == []


async def test_missing_database_shows_how_to_start_then_its_runs(here: Path) -> None:
    app = snapshot_app("later.db")
    async with app.run_test() as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        assert screen.has_class("empty")
        assert "nanoagent --db later.db demo" in plain(screen.query_one("#empty"))
        assert "No database at later.db yet" in plain(screen.query_one("#empty"))
        await seed_database(here / "later.db", EVERY_STATUS[:2], fresh=True)
        await wait_for(pilot, lambda: len(screen.table.keys) == 2, what="the runs", timeout=5)
        assert not screen.has_class("empty")


async def test_detail_streams_events_and_marks_the_in_flight_task(
    here: Path, workers: list[int]
) -> None:
    db = here / "runs.db"
    store = await SQLiteStore.open(db)
    try:
        run = new_run("watched", "Watch me", options={"tasks": "4", "delay": "0.4"})
        # a long lease: the worker is frozen below and must still count as running
        pid = await start_detached(store, str(db), run, heartbeat=60)
        workers.append(pid)
        # Freeze the worker while a task body is in flight, so that the dashboard is sure
        # to see one however slowly it starts on a loaded machine (no race with the run).
        while True:
            current = await store.get_run("watched")
            assert current.status is RunStatus.RUNNING, "the run ended before a body was seen"
            if current.current_task_id is not None and current.phase.value == "executing":
                os.kill(pid, signal.SIGSTOP)
                frozen = await store.get_run("watched")
                if frozen.current_task_id is not None and frozen.phase.value == "executing":
                    break
                os.kill(pid, signal.SIGCONT)  # the body ended in between: try the next one
            await asyncio.sleep(0.02)
    finally:
        await store.close()
    app = DashboardApp(str(db), animate=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: shown_status(app, "watched") is not None)
        assert runs_screen(app).table.move_to("watched")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(
            pilot,
            lambda: screen.detail is not None
            and any(getattr(row, "status") == "in flight"  # noqa: B009
                    for row in map(screen.query_one("#tasks", KeyedTable).row,
                                   screen.query_one("#tasks", KeyedTable).keys)),
            what="an in-flight task",
        )  # fmt: skip
        first = screen.last_event
        os.kill(pid, signal.SIGCONT)
        await wait_for(pilot, lambda: screen.last_event > first, what="more events")
        await wait_for(
            pilot,
            lambda: screen.detail is not None and screen.detail.run.status is RunStatus.COMPLETED,
            what="the run to complete in the detail",
        )
        assert len(screen.durations) >= 4
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DetailScreen))
        assert shown_status(app, "watched") == "completed"


async def test_new_run_form_starts_a_worker(here: Path) -> None:
    await seed_database(here / "runs.db", EVERY_STATUS[:1])
    app = RecordingApp(str(here / "runs.db"), animate=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen))
        form = app.screen
        form.query_one("#goal", Input).value = "Count to three"
        form.query_one("#options", Input).value = "tasks=3 delay=0.05 followups=0"
        form.query_one("#iterations", Input).value = "0"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "between 1" in plain(form.query_one("#form-error")))
        form.query_one("#iterations", Input).value = "10"
        await pilot.click("#start")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewRunScreen), timeout=10)
        table = runs_screen(app).table

        def new_run_id() -> str | None:
            return next((key for key in table.keys if key != "cmp-7c1e2a"), None)

        await wait_for(pilot, lambda: new_run_id() is not None, what="the new run's row")
        started = new_run_id()
        assert started is not None
        # the cursor goes to it (in the refresh that shows its row, or the next one)
        await wait_for(pilot, lambda: table.cursor_key == started, what="the cursor on it")
        await wait_for(
            pilot,
            lambda: shown_status(app, started) == "completed",
            timeout=30,
            what="the new run to complete",
        )
    assert any("started" in said for said in app.said)


async def test_command_palette_offers_the_actions(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"crashed")

        def prompts() -> list[str]:
            found = app.screen.query(OptionList)
            if not found:
                return []
            options = found.first()
            return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]

        await wait_for(pilot, lambda: any("Show crashed runs only" in p for p in prompts()))
        await pilot.press("enter")
        await wait_for(pilot, lambda: runs_screen(app).table.keys == ["crash-e02d5b"])
        for query, name in (
            ("resu", "Resume the selected run"),
            ("abor", "Abort the selected run"),
            ("new", "New run"),
            ("help", "Help"),
        ):
            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
            await pilot.press(*query)
            await wait_for(
                pilot, lambda n=name: any(n in p for p in prompts()), what=f"{name} offered"
            )
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))


async def test_a_locked_database_leaves_the_screen_responsive_and_waiting(here: Path) -> None:
    """Another process holds the (rollback-journal) database locked: the bar says the
    dashboard is waiting, keys still work, and it goes live again once the lock is gone."""
    db = here / "runs.db"
    await seed_database(db)
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        app = snapshot_app("runs.db")
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.live.health is Health.WAITING, what="waiting")
            screen = runs_screen(app)
            await wait_for(pilot, lambda: "waiting" in plain(screen.query_one(TopBar)))
            assert "database is locked" in plain(screen.query_one("#empty"))
            # a key works while the lock is still held (the invariant; not how fast)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), timeout=60)
            assert app.live.health is Health.WAITING
            await pilot.press("escape")
            locker.execute("ROLLBACK")
            await wait_for(pilot, lambda: len(screen.table.keys) == 7, what="the runs")
            assert app.live.health is Health.LIVE
    finally:
        locker.close()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_help_and_quit(here: Path, size: tuple[int, int]) -> None:
    app = snapshot_app("none.db")
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0
