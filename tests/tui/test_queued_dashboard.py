"""Queued runs on the dashboard (issue 13 item 2): the row says queued, the top bar counts
them, and ``r`` on one says a pool worker takes it up (and writes nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuikit import loaded, runs_screen, shown_status, wait_for

from nanoagent_core.models import RunState, RunStatus, utc_now, validated
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.widgets.top_bar import counts_text


class RecordingApp(DashboardApp):
    """Keeps the notifications it showed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.said.append(message)
        super().notify(message, *args, **kwargs)


async def enqueue(path: Path, run_ids: list[str]) -> None:
    store = await SQLiteStore.open(path)
    try:
        for run_id in run_ids:
            run = validated(
                RunState, run_id=run_id, goal="wait in line", max_iterations=5,
                status=RunStatus.QUEUED,
            )  # fmt: skip
            await store.create_run(run)
    finally:
        await store.close()


async def test_queued_runs_show_queued_and_r_says_a_pool_worker_takes_them(here: Path) -> None:
    await enqueue(here / "runs.db", ["q-1", "q-2"])
    before = (here / "runs.db").read_bytes()
    app = RecordingApp("runs.db", animate=False)
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await loaded(pilot)
        assert shown_status(app, "q-1") == "queued"
        assert shown_status(app, "q-2") == "queued"
        assert app.live.shown_counts(utc_now()) == {"queued": 2}  # what the top bar counts
        assert "… 2 queued" in counts_text(app.bar_state("")).plain
        assert runs_screen(app).table.move_to("q-1")
        await pilot.pause()
        assert app.check_action("resume", ()) is None  # r is dimmed: nothing to resume here
        app.action_resume()
        await wait_for(
            pilot,
            lambda: any("is queued: a pool worker" in said for said in app.said),
            what="why r does nothing",
        )
    assert (here / "runs.db").read_bytes() == before
