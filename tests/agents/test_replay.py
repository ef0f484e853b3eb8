"""Offline replay (issue 11 item 7): ``nanoagent replay RUN`` runs the goal again on models
that answer from the recording and says whether the outcome is the same.

Through the command on real SQLite files (the ``llm`` agent on ``model=test`` records; one
recording, made once, copied for each test; the commands run in this process, but the replay
of a run recorded on a real model runs as a real process, in an environment without its
key), and in-process for a user's make_agent agent with a tool: a replay of an
unchanged agent equals its recording and spends nothing; a tampered journal, a changed
option and a changed tool each give a difference line and exit 7; a demo run, an unknown
run, an unfinished run and an unreadable journal are refused in one line.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

import pytest
from agentkit import clean_env, cli, copy_db, here, list_json, outcome, show_json
from pydantic_ai import Agent as PydanticAgent

from nanoagent_core.agents import registry
from nanoagent_core.agents.base import Agent
from nanoagent_core.agents.pydantic_ai import make_agent
from nanoagent_core.errors import ValidationError
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.replay import EXIT_DIFFERENT, replay_run
from nanoagent_core.worker import resume_run

GOAL = "Plan a trip"
LLM = ["--agent", "llm", "--option", "model=test"]
LEDGER = ("requests", "tokens_in", "tokens_out", "cost_usd", "cost_complete")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """A completed run ``trip`` of the llm agent (a database no test writes to) and its
    ``show --json``."""
    base = tmp_path_factory.mktemp("recording")
    env = clean_env(HOME=str(base), XDG_DATA_HOME=str(base / "xdg"))
    db = str(base / "runs.db")
    done = here("--db", db, "run", GOAL, *LLM, "--run-id", "trip", env=env)
    assert done.code == 0, done
    return db, show_json(db, "trip", env)


@pytest.fixture
def recorded(db: str, recording: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """This test's ``db``: a copy of the recording, whose ``show --json`` this is."""
    copy_db(recording[0], db)
    return recording[1]


def tamper(db: str, sql: str, *params: object) -> int:
    """Change the recording behind nanoagent's back; how many rows changed."""
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).rowcount


def test_a_replay_of_a_completed_llm_run_equals_it_and_spends_nothing(
    db: str, env: dict[str, str], recorded: dict[str, Any]
):
    replayed = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == 0, replayed
    assert replayed.err == ""
    assert replayed.out.splitlines() == [
        "replay again equals run trip: completed, 4 tasks, the same results"
    ]
    doc = show_json(db, "again", env)
    assert outcome(doc) == outcome(recorded)
    assert (doc["goal"], doc["agent"]) == (recorded["goal"], recorded["agent"])
    # every execution was answered from the journal: requests made, no token spent, $0
    assert doc["requests"] == recorded["requests"] > 0
    assert {k: doc[k] for k in LEDGER[1:]} == {
        "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0, "cost_complete": True
    }  # fmt: skip
    assert recorded["tokens_in"] > 0
    assert all(e["model"] == "replay" for t in doc["tasks"] for e in t["journal"])
    # the replay says what it replays, right after its creation
    assert doc["events"][1]["kind"] == "note"
    assert doc["events"][1]["data"] == {"replay_of": "trip"}


@pytest.mark.usefixtures("recorded")
def test_a_run_recorded_on_a_real_model_replays_without_its_sdk_or_key(
    db: str, env: dict[str, str]
):
    """No model is built for a replay: a run of openai:gpt-4.1 replays in a process started
    with no key in its environment, equal to its recording."""
    options = json.dumps({"model": "openai:gpt-4.1"})
    assert tamper(db, "UPDATE runs SET agent_options = ? WHERE run_id = 'trip'", options) == 1
    assert "OPENAI_API_KEY" not in env
    started = here("--db", db, "run", GOAL, "--agent", "llm", "--option", "model=openai:gpt-4.1",
                   env=env)  # fmt: skip
    assert started.code == 2, started  # the real model cannot be used here
    replayed = cli("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == 0, replayed
    assert "equals run trip" in replayed.out


def test_a_tampered_result_in_the_journal_is_one_difference_line_and_exit_7(
    db: str, env: dict[str, str], recorded: dict[str, Any]
):
    first = recorded["tasks"][0]
    changed = tamper(
        db,
        "UPDATE attempts SET messages = replace(messages, 'building on 0 earlier results',"
        " 'building on nothing') WHERE run_id = 'trip' AND task_id = ?",
        first["id"],
    )
    assert changed == 1
    replayed = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == EXIT_DIFFERENT == 7, replayed
    lines = replayed.out.splitlines()
    task_id = first["id"]
    # shown from a little before where they differ
    assert lines[0] == (
        f"differs: task {task_id} result: recorded '…model), building on 0 earlier results',"
        " replayed '…model), building on nothing'"
    )
    assert lines[1].startswith(
        "differs: run result: recorded '…model), building on 0 earlier results 2. Draft"
    )
    assert ", replayed '…model), building on nothing 2. Draft" in lines[1]
    assert lines[-1] == "replay again differs from run trip (2 differences)"
    assert len(lines) == 3
    doc = show_json(db, "again", env)
    assert doc["results"][task_id].endswith("building on nothing")
    assert doc["status"] == "completed"


def test_a_journal_that_now_says_failure_fails_the_replay(
    db: str, env: dict[str, str], recorded: dict[str, Any]
):
    """The first task's recorded answer turned into a failure: the replay's task fails, its
    retries find no more recorded answers, and the run fails."""
    first = recorded["tasks"][0]["id"]
    changed = tamper(
        db,
        "UPDATE attempts SET messages = replace(messages, '\"success\":true', '\"success\":false')"
        " WHERE run_id = 'trip' AND task_id = ?",
        first,
    )
    assert changed == 1
    replayed = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == 7, replayed
    lines = replayed.out.splitlines()
    assert lines[0] == "differs: status: recorded completed, replayed failed"
    assert f"differs: task {first} status: recorded 'done', replayed 'failed'" in lines
    assert any(
        line.startswith(f"differs: task {first} error: recorded none, replayed ") for line in lines
    )
    assert lines[-1].startswith("replay again differs from run trip (")


def test_a_demo_run_is_refused_in_one_line(db: str, env: dict[str, str]):
    quick = ["--option", "tasks=2", "--option", "followups=0", "--option", "delay=0"]
    done = here("--db", db, "run", "a demo goal", *quick, "--run-id", "plain", env=env)
    assert done.code == 0, done
    refused = here("--db", db, "replay", "plain", "--as", "again", env=env)
    assert refused.code == 2, refused
    assert refused.out == ""
    assert refused.err == (
        "nanoagent: run 'plain' (agent 'demo') has no conversation journal: only runs of"
        " pydantic-ai agents (llm, or yours built by make_agent) can be replayed\n"
    )
    assert [r["run_id"] for r in list_json(db, env)] == ["plain"]  # nothing stored
    unknown = here("--db", db, "replay", "nope", env=env)
    assert (unknown.code, unknown.err) == (3, "nanoagent: no run 'nope'\n")


@pytest.mark.usefixtures("recorded")
def test_an_unreadable_journal_is_refused_in_one_line(db: str, env: dict[str, str]):
    assert tamper(db, "UPDATE attempts SET messages = '[{\"kind\": 1}]' WHERE run_id = 'trip'")
    refused = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert refused.code == 2, refused
    assert len(refused.err.splitlines()) == 1
    assert "the journal cannot be read" in refused.err
    assert "Traceback" not in refused.err
    assert [r["run_id"] for r in list_json(db, env)] == ["trip"]


# -- a user's agent with a tool, in-process --------------------------------------------------


def tool_agent(*, broken: bool) -> registry.AgentFactory:
    """A make_agent agent whose executor has a tool; ``broken``: the tool now raises (a code
    change that a replay should catch)."""

    def factory(options: Mapping[str, str]) -> Agent:
        executor = PydanticAgent(instructions="Use the timetable.")

        @executor.tool_plain
        def timetable(city: str) -> str:
            """The trains to a city."""
            if broken:
                raise RuntimeError("the timetable service moved")
            return f"trains to {city}: 08:10, 12:40"

        return make_agent(
            planner=PydanticAgent(),
            executor=executor,
            reflector=PydanticAgent(),
            options=options,
            name="tooly",
        )

    return factory


@pytest.fixture
async def recorded_tool_run(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    monkeypatch.setitem(registry._BUILTIN, "tooly", tool_agent(broken=False))  # pyright: ignore[reportPrivateUsage]
    store = MemoryStore()
    await store.create_run(
        RunState(run_id="r1", goal=GOAL, max_iterations=20, agent="tooly",
                 agent_options={"model": "test"})
    )  # fmt: skip
    final = await resume_run(store, "r1", handle_signals=False)
    assert final.status is RunStatus.COMPLETED
    journal = await store.get_attempts("r1")
    # TestModel called the tool first: two requests per attempt, the tool's return journaled
    assert all(a.requests == 2 for a in journal)
    assert all("trains to" in (a.messages or "") for a in journal)
    return store


async def test_an_unchanged_tool_agent_replays_equal(recorded_tool_run: MemoryStore):
    report = await replay_run(recorded_tool_run, "r1", "r2", handle_signals=False)
    assert report.equal, report.differences
    assert report.replayed.status == "completed"
    assert len(report.replayed.tasks) == 4


async def test_a_changed_option_is_a_difference(recorded_tool_run: MemoryStore):
    """requests_per_task=1: the recorded tool call and answer take two requests."""
    report = await replay_run(
        recorded_tool_run, "r1", "r2", options={"requests_per_task": "1"}, handle_signals=False
    )
    assert not report.equal
    assert report.differences[0] == "status: recorded completed, replayed failed"
    assert (await recorded_tool_run.get_run("r2")).agent_options == {
        "model": "test",
        "requests_per_task": "1",
    }


async def test_a_changed_tool_is_a_difference(
    recorded_tool_run: MemoryStore, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(registry._BUILTIN, "tooly", tool_agent(broken=True))  # pyright: ignore[reportPrivateUsage]
    report = await replay_run(recorded_tool_run, "r1", "r2", handle_signals=False)
    assert not report.equal
    assert report.differences[0] == "status: recorded completed, replayed failed"
    first = report.replayed.tasks[0][0]
    assert report.differences[-1] == (
        f"task {first} first failed in the replay: 'RuntimeError: the timetable service moved'"
    )


async def test_an_unfinished_run_is_refused(recorded_tool_run: MemoryStore):
    await recorded_tool_run.create_run(
        RunState(run_id="r3", goal=GOAL, max_iterations=20, agent="tooly",
                 agent_options={"model": "test"})
    )  # fmt: skip
    with pytest.raises(ValidationError, match="is running: only a finished run can be replayed"):
        await replay_run(recorded_tool_run, "r3", "r4", handle_signals=False)
    assert [r.run_id for r in await recorded_tool_run.list_runs()] == ["r3", "r1"]
