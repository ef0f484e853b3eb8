"""Dashboard paths no test executed (issue 15, item 8): the error screen's retry, the ``f``
status cycle, ``escape`` clearing the filter, and the "no run matches" text."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import select
import shutil
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

from tuikit import (
    NOW,
    loaded,
    plain,
    runs_screen,
    seed_database,
    shown_status,
    snapshot_app,
    wait_for,
)

from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.screens.error import ErrorScreen
from nanoagent_tui.screens.runs import STATUS_FILTERS


async def test_f_cycles_every_status_then_escape_clears_the_filter(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        everything = list(screen.table.keys)
        assert everything
        seen: list[str | None] = []
        # f skips the statuses no run has (issue 14 item 3): the seed has every status but
        # damaged and paused
        steps = [s for s in STATUS_FILTERS[1:] if s not in ("damaged", "paused")]
        steps.append(STATUS_FILTERS[0])
        for _ in steps:
            await pilot.press("f")
            await pilot.pause()
            seen.append(app.live.filter.status)
            status = app.live.filter.status
            await wait_for(
                pilot,
                lambda status=status: all(
                    status is None or shown_status(app, key) == status for key in screen.table.keys
                ),
                what=f"only {status} rows",
            )
        # one press per filter: every status once, back to "all" at the end
        assert seen == steps
        await pilot.press("f")  # a status filter again...
        await pilot.pause()
        assert app.live.filter.active
        await pilot.press("escape")  # ...that escape clears
        await wait_for(pilot, lambda: list(screen.table.keys) == everything, what="all runs")
        assert not app.live.filter.active


async def test_a_filter_that_matches_nothing_says_how_to_clear_it(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        await pilot.press("slash")
        await pilot.press(*"zzz-no-such-run")
        await wait_for(pilot, lambda: not screen.table.keys, what="no rows")
        await wait_for(pilot, lambda: "No run matches" in plain(screen.query_one("#empty")))
        assert "escape to clear the filter" in plain(screen.query_one("#empty"))


async def test_the_error_screen_retries_and_opens_a_repaired_database(here: Path) -> None:
    good = here / "good.db"
    await seed_database(good)
    target = here / "runs.db"
    target.write_text("not a database\n" * 100)
    app = snapshot_app("runs.db")
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="error screen")
        target.unlink()
        shutil.copy(good, target)
        await pilot.press("r")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorScreen), what="retry")
        await wait_for(pilot, lambda: len(runs_screen(app).table.keys) > 0, what="the runs")


def test_the_nanoagent_command_opens_the_dashboard_in_a_terminal_and_q_quits(
    tmp_path: Path,
) -> None:
    """The real launch: ``nanoagent --db X`` on a pseudo-terminal draws the dashboard (the
    seeded run ids appear on the screen), and ``q`` ends it with status 0."""
    db = tmp_path / "runs.db"
    asyncio.run(seed_database(db))
    run_id = asyncio.run(first_run_id(db))
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOAGENT_")}
    env.update(TERM="xterm-256color", HOME=str(tmp_path), COLUMNS="120", LINES="30")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("nanoagent")), "--db", str(db)],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        start_new_session=True,
    )
    os.close(child)
    screen = b""
    try:
        deadline = time.monotonic() + 60
        while run_id.encode() not in screen:
            assert time.monotonic() < deadline, screen[-2000:]
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                screen += os.read(main, 65536)
        os.write(main, b"q")
        code = None
        while code is None:
            assert time.monotonic() < deadline + 60, "the dashboard did not quit on q"
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                with contextlib.suppress(OSError):  # EIO once the child closed the terminal
                    os.read(main, 65536)
            code = proc.poll()
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(main)


async def first_run_id(db: Path) -> str:
    store = await SQLiteStore.open(db, read_only=True)
    try:
        return (await store.list_runs(limit=1))[0].run_id
    finally:
        await store.close()


class NotingApp(DashboardApp):
    """Keeps the titles of the notifications it showed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.titles: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.titles.append(f"{kwargs.get('title', '')}: {message}")
        super().notify(message, *args, **kwargs)


async def test_an_action_that_fails_says_so(here: Path) -> None:
    """Resuming a crashed run whose agent is not installed: the worker is never started, and
    the dashboard says "Resume ... failed" with the reason."""
    db = here / "runs.db"
    await seed_database(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET agent = 'not-installed' WHERE run_id = 'crash-e02d5b'")
    conn.close()
    app = NotingApp("runs.db", clock=lambda: NOW, animate=False)
    async with app.run_test(notifications=True) as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to("crash-e02d5b")
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: any(t.startswith("Resume crash-e02d5b failed:") for t in app.titles),
            what="the failure notification",
        )
    failed = [t for t in app.titles if "failed:" in t]
    assert "not-installed" in failed[0], failed
