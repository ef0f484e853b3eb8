"""Finding, reading and acting on runs without the README (issue 14 items 1-4, 7, 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import Input, RichLog, Static
from tuikit import (
    EVERY_STATUS,
    NOW,
    Seed,
    loaded,
    open_detail,
    plain,
    runs_screen,
    seed_database,
    wait_for,
)

from nanoagent_core.models import RunStatus
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.screens.detail import DetailScreen
from nanoagent_tui.screens.detail_parts import duration_bars
from nanoagent_tui.screens.dialogs import ConfirmScreen
from nanoagent_tui.screens.new_run import NewRunScreen
from nanoagent_tui.widgets.top_bar import TopBar

LONG = "demo-survey-2-of-a-much-longer-batch"


class Recording(DashboardApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.said.append(message)
        super().notify(message, *args, **kwargs)


def _app() -> Recording:
    return Recording("runs.db", clock=lambda: NOW, animate=False)


async def test_list_keys_move_the_cursor(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = _app()
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        table = runs_screen(app).table
        last = len(table.keys) - 1
        for key, row in (("G", last), ("g", 0), ("j", 1), ("j", 2), ("k", 1), ("end", last),
                         ("home", 0)):  # fmt: skip
            await pilot.press(key)
            assert table.cursor_row == row, key


async def test_status_filter_steps_both_ways_over_statuses_some_run_has(here: Path) -> None:
    await seed_database(here / "runs.db", (EVERY_STATUS[0], EVERY_STATUS[4]))
    app = _app()
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        seen: list[str | None] = []
        for key in ("f", "f", "f", "F", "F"):
            await pilot.press(key)
            seen.append(app.live.filter.status)
        assert seen == ["crashed", "completed", None, "completed", "crashed"]


async def test_sort_by_any_column_with_its_direction_in_the_header(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = _app()
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        screen = runs_screen(app)
        table = screen.table

        def header(key: str) -> str:
            return next(str(c.label) for k, c in table.columns.items() if k.value == key)

        assert "▼" in header("activity")
        await pilot.press("s")  # the next column after activity: the first, status
        assert screen.sort_by == ("status", False)
        assert "▲" in header("status")
        assert "▼" not in header("activity")
        assert table.keys[:1] == ["crash-e02d5b"]  # needing attention first
        await pilot.press("s")
        assert screen.sort_by == ("run_id", False)
        assert table.keys == sorted(table.keys)
        await pilot.press("S")
        assert "▼" in header("run_id")
        assert table.keys == sorted(table.keys, reverse=True)


async def test_copy_dims_and_help(here: Path) -> None:
    await seed_database(here / "runs.db", (*EVERY_STATUS, Seed(LONG, "a long id")))
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        table = runs_screen(app).table
        assert table.move_to(LONG)
        await pilot.press("c")
        assert app.clipboard == LONG
        assert any(f"Copied {LONG}" in said for said in app.said)
        assert app.check_action("resume", ()) is None  # running: nothing to resume
        assert app.check_action("abort", ()) is True
        assert table.move_to("cmp-7c1e2a")
        await pilot.pause()
        assert app.check_action("abort", ()) is None
        assert table.move_to("crash-e02d5b")
        await pilot.pause()
        assert app.check_action("resume", ()) is True
        assert {"enter", "r", "a", "c"} <= set(app.screen.active_bindings)
        assert "enter" in {
            key for key, active in app.screen.active_bindings.items() if active.binding.show
        }


async def test_counts_are_labelled_at_80_columns(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        bar = plain(runs_screen(app).query_one(TopBar))
        assert all(f"1 {word}" in bar for word in ("crashed", "running", "aborting")), bar
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert "1 completed" in plain(runs_screen(app).query_one(TopBar))


async def test_empty_database_hint_names_its_db(here: Path) -> None:
    app = DashboardApp("missing.db", clock=lambda: NOW, animate=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        text = plain(runs_screen(app).query_one("#empty", Static))
        assert "nanoagent --db missing.db demo" in text, text


async def test_detail_shows_the_whole_id_readable_events_and_searches(here: Path) -> None:
    await seed_database(here / "runs.db", (*EVERY_STATUS, Seed(LONG, "a long id")))
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_detail(pilot, LONG)
        assert LONG in plain(detail.query_one("#info", Static))
        lines = [line.plain for line in detail._lines]  # pyright: ignore[reportPrivateUsage]
        assert lines
        assert all(line[:8].count(":") == 2 for line in lines)
        assert not any("task_id=" in line for line in lines)
        done = next(line for line in lines if " done " in line)
        assert "step 1 finished: alpha" in done  # whole, not cut
        log = detail.query_one("#events", RichLog)
        assert log.border_title == "events"
        await pilot.press("slash", *"started")
        await wait_for(pilot, lambda: "matching" in str(log.border_title))
        starts = [line for line in lines if "started" in line]
        assert log.border_title == f"events matching 'started': {len(starts)}"
        shown = " ".join(strip.text.strip() for strip in log.lines)
        assert " done (" not in shown  # only the matching events are shown
        await pilot.press("escape")
        assert log.border_title == "events"


async def test_detail_log_keeps_the_readers_place(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_detail(pilot, "fail-3be1c7")
        log = detail.query_one("#events", RichLog)
        more = [Text(f"00:00:{n:02d} note {n}") for n in range(40)]
        detail._add_lines(more)  # pyright: ignore[reportPrivateUsage]
        await pilot.pause()
        assert log.is_vertical_scroll_end  # at the bottom: it follows the tail
        log.scroll_home(animate=False)
        await pilot.pause()
        detail._add_lines(more[:3])  # pyright: ignore[reportPrivateUsage]
        await pilot.pause()
        assert log.scroll_y == 0
        assert log.border_subtitle == "3 new events ↓ (end)"


async def test_a_crash_shows_in_the_log_and_brackets_step_runs(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = _app()
    async with app.run_test(size=(160, 48)) as pilot:
        detail = await open_detail(pilot, "crash-e02d5b")
        await wait_for(
            pilot,
            lambda: any("✖ crashed" in line.plain for line in detail._lines),  # pyright: ignore[reportPrivateUsage]
        )
        keys = runs_screen(app).table.keys
        following = keys[keys.index("crash-e02d5b") + 1]
        await pilot.press("right_square_bracket")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, DetailScreen) and app.screen.run_id == following,
        )
        assert runs_screen(app).table.cursor_key == following


async def test_dialogs_name_the_goal_and_the_form_explains(here: Path) -> None:
    await seed_database(here / "runs.db")
    app = _app()
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        assert runs_screen(app).table.move_to("run-b7f3c9")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Write a field guide" in plain(app.screen.query_one("#goal", Static))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen))
        form = app.screen
        await pilot.pause()
        await pilot.click("#iterations")
        await pilot.press("end", "x")
        iterations = form.query_one("#iterations", Input)
        assert iterations.value == "50x"  # typed, not refused with a bell
        assert "whole number" in plain(form.query_one("#form-error"))
        await pilot.press("backspace")
        assert plain(form.query_one("#form-error")).strip() == ""
        await pilot.press("enter")  # no goal: refused, and the error stays until fixed
        await wait_for(pilot, lambda: plain(form.query_one("#form-error")).strip() != "")
        error = plain(form.query_one("#form-error"))
        await pilot.press("backspace")
        assert plain(form.query_one("#form-error")) == error or "whole" in plain(
            form.query_one("#form-error")
        )
        assert "escape" in plain(form.query_one("#form-keys"))


def test_equal_durations_draw_equal_bars() -> None:
    assert duration_bars([1.2] * 6, 6, 1).plain == "█" * 6
    assert duration_bars([1.0, 2.0], 2, 1).plain == "▄█"
    assert RunStatus
