"""The footer is rebuilt only when the keys it shows change.

Textual's ``Footer`` removes and mounts all its keys (each styled twice as it mounts) every
time a screen calls ``refresh_bindings``, which the runs list does after every poll that
changed a row and on every cursor move: a busy dashboard rebuilt an unchanged footer
several times a second (and that was a third of the dashboard tests' CPU). The dashboard's
footer keeps its keys while they are the same, dims or lights them in place when only that
changed (``r`` enabled on a crashed run, dimmed on a completed one), and is rebuilt when
the keys themselves change (the filter box focused: the list's ``enter`` is not offered)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets._footer import FooterKey  # pyright: ignore[reportPrivateUsage]
from tuikit import loaded, runs_screen, seed_database, snapshot_app, wait_for

from nanoagent_tui.app import DashboardApp


def _keys(app: DashboardApp) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


def _enabled(app: DashboardApp, action: str) -> bool | None:
    keys = [k for k in _keys(app) if k.action == action]
    return None if not keys else not keys[0].has_class("-disabled")


async def test_an_unchanged_footer_is_not_rebuilt_a_changed_one_is(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        assert screen.table.move_to("crash-e02d5b")
        await wait_for(pilot, lambda: _enabled(app, "app.resume") is True, what="r enabled")
        shown = _keys(app)
        assert len(shown) > 5
        for _ in range(5):  # what every poll that changed a row does
            screen.refresh_bindings()
            await pilot.pause()
        assert screen.table.move_to("int-9a44f0")  # interrupted, as crashed: r on, a dimmed
        await pilot.pause()
        assert screen.table.move_to("crash-e02d5b")
        await pilot.pause()
        assert _keys(app) == shown, "the footer was rebuilt though its keys did not change"
        assert all(key.is_attached for key in shown)

        assert screen.table.move_to("cmp-7c1e2a")  # completed: r is dimmed, in place
        await wait_for(pilot, lambda: _enabled(app, "app.resume") is False, what="r dimmed")
        assert _keys(app) == shown, "the footer was rebuilt to dim a key"
        resume = next(key for key in shown if key.action == "app.resume")
        assert resume._disabled  # pyright: ignore[reportPrivateUsage]  # a click rings the bell
        assert screen.table.move_to("crash-e02d5b")
        await wait_for(pilot, lambda: _enabled(app, "app.resume") is True, what="r lit again")
        assert not resume._disabled  # pyright: ignore[reportPrivateUsage]
        assert _keys(app) == shown

        await pilot.press("slash")  # the filter box: the list's enter (Detail) is not offered
        await wait_for(
            pilot, lambda: _enabled(app, "select_cursor") is None, what="the keys of the filter"
        )
        assert not any(key.is_attached for key in shown), "the footer was not rebuilt"
