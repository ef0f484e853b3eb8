"""Approving and denying from the dashboard (Pilot), on a run that ``nanoagent run`` paused
for approval (the demo agent's ``approve=1``; the command runs in this process, its claims
are tested elsewhere), resumed by a real detached worker; keys
typed ahead decide nothing; ``w`` finds the runs that need a person; a run that comes to need
one raises a notification and rings the bell (unless turned off)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from tuikit import anano, loaded, open_detail, runs_screen, wait_for

from nanoagent_core.approvals import ApprovalRequest, Decision
from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.screens.approval import ApprovalPanel, DenyScreen
from nanoagent_tui.screens.detail import DetailScreen


def type_ahead(app: DashboardApp, *keys: str) -> None:
    """Keys typed in one burst: all made now, before any of them is handled (Pilot's
    ``press`` waits for the app to settle after each key, which no fast typist does)."""
    made = [events.Key(key, key if len(key) == 1 else None) for key in keys]
    for event in made:
        event.set_sender(app)
        app._driver.send_message(event)  # pyright: ignore[reportPrivateUsage, reportOptionalMemberAccess]


async def paused_run(db: Path, run_id: str) -> None:
    done = await anano("run", "Send the weekly report", "--db", str(db), "--run-id", run_id,
                     "--option", "tasks=2", "--option", "followups=0", "--option", "delay=0",
                     "--option", "approve=1")  # fmt: skip
    assert done.returncode == 6, done  # paused


async def stored(db: Path, run_id: str) -> tuple[RunState, list[ApprovalRequest], dict[str, str]]:
    store = await SQLiteStore.open(db, read_only=True)
    try:
        run, _, results = await store.get_run_detail(run_id)
        return run, await store.get_approvals(run_id), results
    finally:
        await store.close()


async def settle(pilot: Pilot[Any], db: Path, run_id: str, workers: list[int]) -> RunState:
    """Wait until the run has ended (its detached worker finished it)."""
    final: list[RunState] = []

    async def probe() -> bool:
        run, _, _ = await stored(db, run_id)
        if run.owner is not None and run.owner.pid not in workers:
            workers.append(run.owner.pid)
        final[:] = [run]
        return run.status is RunStatus.COMPLETED

    deadline = 90.0
    while not await probe():
        deadline -= 0.2
        if deadline <= 0:
            raise AssertionError(f"run {run_id} did not complete: {final}")
        await pilot.pause(0.2)
    return final[0]


async def request_shown(pilot: Pilot[Any]) -> ApprovalPanel:
    screen = pilot.app.screen
    assert isinstance(screen, DetailScreen)
    panel = screen.query_one(ApprovalPanel)
    await wait_for(pilot, lambda: panel.shown_at < math.inf, what="the request on screen")
    return panel


async def test_approve_from_the_detail(here: Path, workers: list[int]) -> None:
    await paused_run(here / "a.db", "r1")
    app = DashboardApp("a.db", animate=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, "r1")
        panel = await request_shown(pilot)
        assert panel.request is not None
        assert panel.request.what == "send_summary"
        await pilot.press("y")
        run = await settle(pilot, here / "a.db", "r1", workers)
    _, (request,), results = await stored(here / "a.db", "r1")
    assert request.decision is Decision.APPROVED
    assert results[request.task_id].endswith("(send_summary approved and sent)")
    assert run.status is RunStatus.COMPLETED


async def test_deny_with_a_reason_from_the_detail(here: Path, workers: list[int]) -> None:
    await paused_run(here / "d.db", "r2")
    app = DashboardApp("d.db", animate=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, "r2")
        await request_shown(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DenyScreen), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, DenyScreen)
        await wait_for(pilot, lambda: dialog.shown.shown_at < math.inf, what="dialog drawn")
        await pilot.press(*"too late", "enter")
        await settle(pilot, here / "d.db", "r2", workers)
    _, (request,), results = await stored(here / "d.db", "r2")
    assert (request.decision, request.reason) == (Decision.DENIED, "too late")
    assert results[request.task_id] == "step 1: send_summary was denied (too late)"


async def test_keys_typed_ahead_decide_nothing(here: Path) -> None:
    """``enter`` then ``y`` typed at once from the list: the ``y`` was typed before the
    request was on screen, so nothing is approved; ``d`` then ``enter`` likewise deny
    nothing."""
    await paused_run(here / "t.db", "r3")
    app = DashboardApp("t.db", animate=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to("r3")
        type_ahead(app, "enter", "y")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
        await request_shown(pilot)
        idle = app.live.stats.idle
        await wait_for(pilot, lambda: app.live.stats.idle >= idle + 3, what="three idle polls")
        _, (request,), _ = await stored(here / "t.db", "r3")
        assert request.decision is Decision.PENDING
        # a deny dialog whose enter came before it was drawn denies nothing either
        type_ahead(app, "d", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DenyScreen), what="the dialog")
        idle = app.live.stats.idle
        await wait_for(pilot, lambda: app.live.stats.idle >= idle + 3, what="three idle polls")
        assert isinstance(app.screen, DenyScreen)
        _, (request,), _ = await stored(here / "t.db", "r3")
        assert request.decision is Decision.PENDING


@pytest.mark.parametrize("bell", [True, False])
async def test_a_run_that_pauses_is_announced_and_w_finds_it(
    here: Path, workers: list[int], bell: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rang: list[int] = []
    app = DashboardApp("n.db", animate=False, bell=bell)
    monkeypatch.setattr(app, "bell", lambda: rang.append(1))
    notes: list[str] = []
    real_notify = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        real_notify(message, **kwargs)

    monkeypatch.setattr(app, "notify", notify)
    # a completed run first, so that the dashboard has opened on something
    done = await anano("run", "Quick", "--db", "n.db", "--run-id", "quick", "--option", "tasks=1",
                     "--option", "followups=0", "--option", "delay=0")  # fmt: skip
    assert done.returncode == 0, done
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        started = await anano("run", "Waits", "--db", "n.db", "--run-id", "waits", "--detach",
                            "--option", "tasks=2", "--option", "followups=0",
                            "--option", "delay=0", "--option", "approve=2")  # fmt: skip
        assert started.returncode == 0, started
        await wait_for(pilot, lambda: any("waits paused" in n for n in notes), what="notice")
        assert rang == ([1] if bell else [])
        note = next(n for n in notes if "waits paused" in n)
        assert "(approval): send_summary" in note
        await pilot.press("w")
        assert runs_screen(app).table.cursor_key == "waits"
        await pilot.press("w")  # the only one: stays there
        assert runs_screen(app).table.cursor_key == "waits"
        assert rang == ([1] if bell else [])  # once per transition
