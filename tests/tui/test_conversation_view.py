"""The detail screen's task view of the conversation (issue 11 item 4) and the usage in the
detail (item 5), driven with Pilot over a database seeded through the real store.

``enter`` on a task opens its journaled attempts: prompts, the model's text, tool calls with
their arguments and returns, every text literal (control characters escaped, markup not
applied); the detail shows each task's tokens and cost and the run's total, the cost
``unknown`` where no price is known.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from convkit import RUN, TRICKY, seed_llm_run
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from tuikit import open_detail, plain, snapshot_app, wait_for

from nanoagent_tui.app import DashboardApp
from nanoagent_tui.screens.conversation import ConversationScreen
from nanoagent_tui.screens.detail import DetailScreen
from nanoagent_tui.widgets.keyed_table import KeyedTable


@pytest.fixture
def llm_db(here: Path) -> str:
    asyncio.run(seed_llm_run(here / "runs.db"))
    return "runs.db"


async def open_conversation(pilot: Pilot[Any], task_id: str) -> ConversationScreen:
    """From the runs list: the run's detail, the task selected, ``enter``; waits until the
    journal is shown."""
    app = pilot.app
    assert isinstance(app, DashboardApp)
    detail = await open_detail(pilot, RUN)
    table = detail.query_one("#tasks", KeyedTable)
    assert table.move_to(task_id), f"no task {task_id}"
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, ConversationScreen) and app.screen.attempts is not None,
        what=f"the conversation of {task_id}",
    )
    for _ in range(3):
        await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ConversationScreen)
    return screen


async def test_enter_on_a_task_shows_its_tool_calls_and_model_text_literally(llm_db: str):
    app = snapshot_app(llm_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_conversation(pilot, "t1")
        text = plain(screen.query_one("#parts"))
        # both attempts, oldest first, each with its outcome and what it spent
        assert text.index("attempt 1  failed") < text.index("attempt 2  done")
        assert "cost unknown" in text  # attempt 1 has no price: never a guess
        assert "cost $0.0021" in text
        # the prompt, the instructions, the model's text, a tool call with its arguments,
        # the tool's return
        assert "Your task (t1): Find trains from Lyon to Paris" in text
        assert "You carry out one task" in text
        assert "Let me look that up." in text
        assert "tool call search_trains" in text
        assert '{"day": "Fri", "from": "Lyon", "to": "Paris"}' in text
        assert "tool return search_trains" in text
        assert "3 trains: 17:04, 18:34, 19:04" in text
        assert "tool call final_result" in text
        # control characters escaped, markup shown as it was written
        assert "\x1b" not in text
        assert "\x07" not in text
        shown = "Trains are \\x1b[31mfull\\x1b[0m on Friday\\x07; see [bold]the timetable[/bold]."
        assert shown in text
        assert TRICKY not in text
        # the other task's conversation is not here
        assert "List three museums" not in text
        task_line = plain(screen.query_one("#task"))
        assert "2 journaled attempts" in task_line
        assert "4 requests" in task_line
        assert "cost $0.0021 + unknown" in task_line
        # scrollable: the column is taller than the screen and scrolls to its end
        talk = screen.query_one("#talk", VerticalScroll)
        assert talk.max_scroll_y > 0
        await pilot.press("end")
        await wait_for(pilot, lambda: talk.scroll_y == talk.max_scroll_y, what="the end")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail")


async def test_the_detail_shows_each_tasks_usage_and_the_runs_total(llm_db: str):
    app = snapshot_app(llm_db)
    async with app.run_test(size=(160, 48)) as pilot:
        detail = await open_detail(pilot, RUN)
        title = str(detail.query_one("#middle").border_title)
        # the run row's totals over the three attempts; one attempt's price is unknown
        assert title == (
            "tasks · total 6 requests · 1385 tokens (1220 in, 165 out) · cost $0.0033 + unknown"
        )
        table = detail.query_one("#tasks", KeyedTable)
        assert table.move_to("t2")
        t2 = "2 requests · 385 tokens (340 in, 45 out) · cost $0.0012 · enter: conversation"
        await wait_for(pilot, lambda: t2 in plain(detail.query_one("#result")), what="t2's usage")
        assert "List three museums" in plain(detail.query_one("#result"))
        assert table.move_to("t1")
        await wait_for(
            pilot,
            lambda: "cost $0.0021 + unknown" in plain(detail.query_one("#result")),
            what="t1's usage",
        )


async def test_a_demo_runs_detail_shows_no_usage_and_an_empty_conversation(here: Path):
    from tuikit import Seed, seed_database

    await seed_database(here / "runs.db", (Seed("demo-1", "A demo goal", tasks=2, done=1),))
    app = snapshot_app("runs.db")
    async with app.run_test(size=(120, 40)) as pilot:
        detail = await open_detail(pilot, "demo-1")
        assert detail.query_one("#middle").border_title == "tasks"
        assert "enter: conversation" not in plain(detail.query_one("#result"))
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ConversationScreen) and app.screen.attempts == [],
            what="the empty conversation",
        )
        await pilot.pause()
        assert "No conversation journaled" in plain(app.screen.query_one("#parts"))


async def test_the_runs_screen_shows_each_runs_tokens(here: Path):
    """A tokens column from 120 cells (as ``list`` shows them: ``-`` for none)."""
    from tuikit import Seed, loaded, runs_screen, seed_database

    await seed_database(here / "runs.db", (Seed("demo-1", "A demo goal", tasks=2, done=1),))
    await seed_llm_run(here / "runs.db")
    app = snapshot_app("runs.db")
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        table = runs_screen(app).table
        await wait_for(pilot, lambda: table.row(RUN) is not None, what="the llm run's row")
        assert getattr(table.row(RUN), "tokens") == "1385"  # noqa: B009
        assert getattr(table.row("demo-1"), "tokens") == "-"  # noqa: B009
        labels = [str(column.label) for column in table.columns.values()]
        assert "tokens" in labels


async def test_the_conversation_of_a_task_in_flight_appears_when_its_attempt_commits(here: Path):
    """Live: t2 is in flight (no journal entry yet); its worker commits the attempt and the
    open view reads the journal again and shows it."""
    from convkit import finish_llm_run

    await seed_llm_run(here / "runs.db", finish=False)
    app = snapshot_app("runs.db")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_conversation(pilot, "t2")
        parts = screen.query_one("#parts")
        assert screen.attempts is not None
        assert [a.task_id for a in screen.attempts] == ["t1", "t1"]
        assert "No conversation journaled" in plain(parts)
        await finish_llm_run(here / "runs.db")
        await wait_for(pilot, lambda: "Louvre, Orsay and Rodin" in plain(parts), what="t2's talk")
        assert "attempt 1  done" in plain(parts)
        assert "done" in plain(screen.query_one("#task"))
