"""Issue 9 items 1 and 10 through the dashboard, with real detached workers: ``r`` and a new
run never import a module planted in the current directory, and ``r`` on a run whose worker
cannot start says that it failed (with the worker's first error line), not that it resumed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tuikit import Seed, loaded, runs_screen, seed_live, shown_status, wait_for

from nanoagent_core.actions import new_run
from nanoagent_core.models import RunStatus
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp

FAST = (("tasks", "3"), ("delay", "0.05"), ("followups", "0"))

PLANTED = """\
import pathlib
pathlib.Path({marker!r}).write_text("imported from the working directory")
raise SystemExit(97)
"""


class RecordingApp(DashboardApp):
    """Keeps the notifications it showed (message, title, severity)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said: list[tuple[str, str, str]] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.said.append(
            (message, str(kwargs.get("title", "")), str(kwargs.get("severity", "information")))
        )
        super().notify(message, *args, **kwargs)


async def _run(path: Path, run_id: str) -> Any:
    store = await SQLiteStore.open(path, create=False)
    try:
        return await store.get_run(run_id)
    finally:
        await store.close()


async def test_r_and_new_runs_never_import_modules_planted_in_the_current_directory(
    here: Path, workers: list[int]
) -> None:
    marker = here / "PLANTED-CODE-RAN"
    for name in ("sqlite3", "pydantic"):
        (here / f"{name}.py").write_text(PLANTED.format(marker=str(marker)))
    db = here / "runs.db"
    await seed_live(
        db, (Seed("crash-1", "Draft the plan", tasks=3, done=1, dead=True, options=FAST),)
    )
    app = RecordingApp(str(db), animate=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to("crash-1")
        await pilot.press("r")
        said = await app.start_run(new_run("fresh-1", "Survey", options=dict(FAST)))
        assert said.startswith("started fresh-1 in worker pid"), said
        for run_id in ("crash-1", "fresh-1"):
            await wait_for(
                pilot,
                lambda run_id=run_id: shown_status(app, run_id) == "completed",
                timeout=60,
                what=f"{run_id} to complete on screen",
            )
    assert (await _run(db, "crash-1")).status is RunStatus.COMPLETED
    assert (await _run(db, "fresh-1")).status is RunStatus.COMPLETED
    assert not marker.exists()


async def test_r_on_a_run_whose_worker_cannot_start_says_it_failed(
    here: Path, workers: list[int]
) -> None:
    db = here / "runs.db"
    await seed_live(
        db, (Seed("crash-1", "Draft the plan", tasks=3, done=1, dead=True, options=FAST),)
    )
    conn = sqlite3.connect(db)
    try:  # every update of a run fails as on a full disk: the worker's claim cannot be written
        conn.execute(
            "CREATE TRIGGER disk_full BEFORE UPDATE ON runs "
            "BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END"
        )
        conn.commit()
    finally:
        conn.close()
    before = await _run(db, "crash-1")
    app = RecordingApp(str(db), animate=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to("crash-1")
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: any(title.startswith("Resume crash-1") for _, title, _ in app.said),
            timeout=60,
            what="the resume's outcome to be notified",
        )
        (outcome,) = [said for said in app.said if said[1].startswith("Resume crash-1")]
    message, title, severity = outcome
    assert (title, severity) == ("Resume crash-1 failed", "error"), outcome
    assert "database or disk is full" in message, message
    assert "resuming" not in message
    assert (await _run(db, "crash-1")).epoch == before.epoch  # nobody claimed it
