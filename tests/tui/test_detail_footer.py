"""The detail's footer follows what the run allows as it changes.

``r`` (resume) and ``a`` (abort) are dimmed for a run they cannot apply to (app.check_action).
The detail screen never told the footer when its run changed, so the footer kept what it
computed when it was composed: a crash that the dashboard saw later left ``r`` dimmed, and on
a loaded machine, where the detail arrived after the footer was drawn, even a crashed or failed
run opened directly showed ``r`` dimmed (the snapshot tests' flake).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets._footer import FooterKey  # pyright: ignore[reportPrivateUsage]
from tuikit import loaded, open_detail, wait_for

from nanoagent_core.actions import new_run
from nanoagent_core.models import Owner
from nanoagent_core.procinfo import host_name, process_start_time
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.screens.detail import DetailScreen


def _footer_allows(app: DashboardApp, action: str) -> bool | None:
    """Whether the footer shows ``action``'s key enabled (None: not shown); Textual's footer
    marks a key whose action check_action disables with the ``-disabled`` class."""
    keys = [k for k in app.screen.query(FooterKey) if k.action == action]
    return None if not keys else not keys[0].has_class("-disabled")


async def test_a_crash_seen_while_the_detail_is_open_enables_resume_in_its_footer(
    here: Path,
) -> None:
    # the run's "worker": alive until killed
    worker = await asyncio.create_subprocess_exec("sleep", "3600")
    try:
        started = process_start_time(worker.pid)
        assert started is not None
        store = await SQLiteStore.open(here / "runs.db", create=True)
        try:
            await store.create_run(new_run("held", "a goal", claim_grace=3600))
            owner = Owner(host=host_name(), pid=worker.pid, pid_started=started)
            await store.claim_run(
                "held", owner, expected_epoch=0, lease_seconds=3600, owner_gone=True
            )
        finally:
            await store.close()
        app = DashboardApp(str(here / "runs.db"), animate=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await loaded(pilot)
            screen = await open_detail(pilot, "held")
            assert _footer_allows(app, "app.resume") is False  # running: nothing to resume
            assert _footer_allows(app, "app.abort") is True
            worker.kill()
            await worker.wait()

            def crashed() -> bool:
                detail = screen.detail
                return detail is not None and app.live.word(detail.run, app.clock()) == "crashed"

            await wait_for(pilot, crashed, what="the dashboard to see the crash")
            await wait_for(
                pilot,
                lambda: _footer_allows(app, "app.resume") is True,
                timeout=30,
                what="r enabled in the footer",
            )
            assert isinstance(app.screen, DetailScreen)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
