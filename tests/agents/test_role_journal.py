"""The planner's and reflector's calls journaled like task attempts (issue 11, real agents),
offline: the ``llm`` agent on ``model=test``.

* An llm run's totals are the sums over all its journaled calls (planner, executor,
  reflector), on the memory, SQLite and PostgreSQL stores.
* kill -9 in the plan, in a reflection, or right after the plan commits, then resume: no
  call journaled twice, none lost, the same usage as an uninterrupted run.
* A token budget smaller than the plan pauses the run at the plan (exit 6, the cut call
  journaled and counted); resuming without more pauses again at once; a raised budget
  completes it. A budget that ends inside the first reflection pauses it there.
* Replay answers the planner and the reflector from their journaled conversations (all three
  roles run again); a tampered plan or reflection is a difference (exit 7); a run with no
  planner or reflector rows (recorded before they were journaled) still replays equal, from
  its recorded outcomes.

The commands run in this process (agentkit.here) where the claim is what they print, their exit
status or what they write; the runs killed with -9 (NANOAGENT_FAULT_* hooks) are real
processes. One uninterrupted run is recorded once for the module: the baseline the others are
compared with, and (copied per test) the recording the replay tests replay or tamper with.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agentkit import clean_env, cli, copy_db, here, outcome, show_json
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelResponse

from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.protocols import Store
from nanoagent_core.worker import FAULT_KILL_AFTER_COMMIT, FAULT_KILL_IN_CALL, resume_run

GOAL = "Plan a trip"
LLM = ["--agent", "llm", "--option", "model=test"]
USAGE = ("requests", "tokens_in", "tokens_out")


def roles(doc: dict[str, Any]) -> list[tuple[str, int, int, str]]:
    return [(c["role"], c["iteration"], c["call"], c["outcome"]) for c in doc["calls"]]


def entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every journaled call of the run: the task attempts, the plan and the reflections."""
    return [e for t in doc["tasks"] for e in t["journal"]] + doc["calls"]


def check_totals(doc: dict[str, Any]) -> None:
    for name in USAGE:
        assert doc[name] == sum(e[name] for e in entries(doc)), name
    keys = [(c["role"], c["iteration"], c["call"]) for c in doc["calls"]]
    assert len(keys) == len(set(keys))


def tamper(db: str, sql: str, *params: object) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).rowcount


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """An uninterrupted llm run ``trip`` of GOAL (a database no test writes to) and its
    ``show --json``."""
    base = tmp_path_factory.mktemp("recording")
    env = clean_env(HOME=str(base), XDG_DATA_HOME=str(base / "xdg"))
    db = str(base / "runs.db")
    done = here("--db", db, "run", GOAL, *LLM, "--run-id", "trip", env=env)
    assert done.code == 0, done
    return db, show_json(db, "trip", env)


@pytest.fixture
def clean(recording: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """An uninterrupted llm run of GOAL, as ``show --json`` gives it."""
    return recording[1]


# -- the journal and the totals ----------------------------------------------------------------


def test_show_json_lists_the_plan_and_the_reflections_and_the_totals_count_them(
    clean: dict[str, Any],
) -> None:
    # the plan (iteration 0), the reflection that adds the check, the one that says done
    assert [(r, o) for r, _, _, o in roles(clean)] == [
        ("planner", "done"),
        ("reflector", "done"),
        ("reflector", "done"),
    ]
    assert [c["call"] for c in clean["calls"]] == [1, 1, 1]
    assert clean["calls"][0]["iteration"] == 0
    for call in clean["calls"]:
        assert min(call["requests"], call["tokens_in"], call["tokens_out"]) >= 1
        assert (call["model"], call["cost_usd"]) == ("test", None)
        messages = ModelMessagesTypeAdapter.validate_json(json.dumps(call["messages"]))
        assert any(isinstance(m, ModelResponse) for m in messages)
    assert "Split this goal" in json.dumps(clean["calls"][0]["messages"])
    assert "Is the goal achieved?" in json.dumps(clean["calls"][1]["messages"])
    check_totals(clean)
    planned = sum(c["tokens_in"] + c["tokens_out"] for c in clean["calls"])
    assert 0 < planned < clean["tokens_in"] + clean["tokens_out"]
    # the existing fields are unchanged: each task's attempts under it
    assert all(len(t["journal"]) == 1 for t in clean["tasks"])


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        from nanoagent_core.memory_store import MemoryStore

        yield MemoryStore()
        return
    if request.param == "sqlite":
        from nanoagent_core.sqlite import SQLiteStore

        opened: Store = await SQLiteStore.open(tmp_path / "runs.db")
        try:
            yield opened
        finally:
            await opened.close()
        return
    from pgkit import drop_schema, new_schema_name, usable_server

    from nanoagent_core.postgres import PostgresStore

    url, schema = usable_server(), new_schema_name()
    opened = await PostgresStore.open(url, schema=schema)
    try:
        yield opened
    finally:
        await opened.close()
        drop_schema(url, schema)


async def test_an_llm_runs_totals_are_the_sums_over_every_journaled_call(store: Store) -> None:
    run = RunState(
        run_id="r1", goal=GOAL, max_iterations=20, agent="llm", agent_options={"model": "test"}
    )
    await store.create_run(run)
    final = await resume_run(store, "r1", handle_signals=False)
    assert final.status is RunStatus.COMPLETED
    attempts, calls = await store.get_attempts("r1"), await store.get_calls("r1")
    assert [(c.role, c.call, c.outcome) for c in calls] == [
        ("planner", 1, "done"),
        ("reflector", 1, "done"),
        ("reflector", 1, "done"),
    ]
    assert calls[0].iteration == 0 < calls[1].iteration < calls[2].iteration
    journal = [*attempts, *calls]
    assert len(attempts) == 4
    assert final.requests == sum(e.requests for e in journal)
    assert final.tokens_in == sum(e.tokens_in for e in journal)
    assert final.tokens_out == sum(e.tokens_out for e in journal)
    # TestModel's model has no price: every call's cost is unknown, and counted so
    assert (final.cost_usd, final.cost_unknown) == (None, len(journal))
    stored = await store.get_run("r1")
    assert (stored.requests, stored.tokens_in, stored.tokens_out) == (
        final.requests,
        final.tokens_in,
        final.tokens_out,
    )


# -- kill -9 and resume ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "value", "before"),
    [
        (FAULT_KILL_IN_CALL, "planner:1", []),
        (FAULT_KILL_IN_CALL, "reflector:1", ["planner"]),
        (FAULT_KILL_IN_CALL, "reflector:2", ["planner", "reflector"]),
        (FAULT_KILL_AFTER_COMMIT, "1", ["planner"]),
    ],
)
def test_kill_9_in_a_plan_or_reflection_then_resume_journals_each_call_once(
    db: str,
    env: dict[str, str],
    clean: dict[str, Any],
    fault: str,
    value: str,
    before: list[str],
) -> None:
    killed = cli("--db", db, "run", GOAL, *LLM, "--run-id", "k", env={**env, fault: value})
    assert killed.code == -signal.SIGKILL, killed
    crashed = show_json(db, "k", env)
    # the call in flight left no row (its messages are absent, never half); the committed
    # ones are there, and the totals are their sums
    assert [c["role"] for c in crashed["calls"]] == before
    check_totals(crashed)
    resumed = here("--db", db, "resume", "k", env=env)
    assert resumed.code == 0, resumed
    doc = show_json(db, "k", env)
    assert doc["status"] == "completed"
    check_totals(doc)
    # nothing journaled twice, nothing lost: the calls of an uninterrupted run
    assert roles(doc) == roles(clean)
    assert all(call in doc["calls"] for call in crashed["calls"])
    assert {k: doc[k] for k in USAGE} == {k: clean[k] for k in USAGE}
    assert outcome(doc) == outcome(clean)


# -- budgets -----------------------------------------------------------------------------------


def test_a_budget_smaller_than_the_plan_pauses_there_and_a_raised_one_completes(
    db: str, env: dict[str, str], clean: dict[str, Any]
) -> None:
    plan = clean["calls"][0]
    limit = plan["tokens_in"] + plan["tokens_out"] - 1
    assert limit >= 1
    paused = here("--db", db, "run", GOAL, *LLM, "--max-tokens", str(limit), "--run-id", "b",
                  env=env)  # fmt: skip
    assert paused.code == 6, paused
    assert paused.err == "", paused.err
    assert paused.out.splitlines()[-1].startswith("run b paused: budget: ")
    doc = show_json(db, "b", env)
    assert (doc["status"], doc["pause_reason"], doc["phase"]) == ("paused", "budget", "planning")
    # the cut plan is journaled (its tokens counted), not a failure; no task was planned
    assert roles(doc) == [("planner", 0, 1, "budget")]
    assert doc["tasks"] == []
    check_totals(doc)
    assert doc["tokens_in"] > 0
    assert "planner:" in doc["pause_detail"]
    assert "run_failed" not in [e["kind"] for e in doc["events"]]

    again = here("--db", db, "resume", "b", env=env)  # no more budget: paused at once
    assert again.code == 6, again
    assert roles(show_json(db, "b", env)) == roles(doc)

    raised = here("--db", db, "resume", "b", "--max-tokens", "50000", env=env)
    assert raised.code == 0, raised
    done = show_json(db, "b", env)
    assert done["status"] == "completed"
    # the plan asked again under its next number; the rest as an uninterrupted run
    assert roles(done) == [
        ("planner", 0, 1, "budget"),
        ("planner", 0, 2, "done"),
        *roles(clean)[1:],
    ]
    check_totals(done)
    assert outcome(done) == outcome(clean)
    assert done["tokens_in"] + done["tokens_out"] <= 50000


def test_a_budget_that_ends_in_the_first_reflection_pauses_it_there(
    db: str, env: dict[str, str], clean: dict[str, Any]
) -> None:
    plan = clean["calls"][0]
    bodies = [e for t in clean["tasks"][:3] for e in t["journal"]]
    spent = sum(e["tokens_in"] + e["tokens_out"] for e in [plan, *bodies])
    limit = str(spent + 1)  # the plan and the three bodies fit; the reflection gets 1 token
    paused = here("--db", db, "run", GOAL, *LLM, "--max-tokens", limit, "--run-id", "r", env=env)
    assert paused.code == 6, paused
    doc = show_json(db, "r", env)
    assert (doc["status"], doc["pause_reason"], doc["phase"]) == ("paused", "budget", "reflecting")
    assert [(r, o) for r, _, _, o in roles(doc)] == [("planner", "done"), ("reflector", "budget")]
    assert "reflector:" in doc["pause_detail"]
    check_totals(doc)
    raised = here("--db", db, "resume", "r", "--max-tokens", "50000", env=env)
    assert raised.code == 0, raised
    done = show_json(db, "r", env)
    check_totals(done)
    assert outcome(done) == outcome(clean)
    first = doc["calls"][1]["iteration"]
    assert [(c["role"], c["iteration"], c["call"]) for c in done["calls"]][1:3] == [
        ("reflector", first, 1),
        ("reflector", first, 2),
    ]


# -- replay ------------------------------------------------------------------------------------


@pytest.fixture
def recorded(db: str, recording: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """This test's ``db``: a copy of the recording (run ``trip``), whose ``show --json`` this
    is."""
    copy_db(recording[0], db)
    return recording[1]


def test_a_replay_answers_the_plan_and_the_reflections_from_their_journal(
    db: str, env: dict[str, str], recorded: dict[str, Any]
) -> None:
    replayed = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == 0, replayed
    assert "replay again equals run trip" in replayed.out
    doc = show_json(db, "again", env)
    assert outcome(doc) == outcome(recorded)
    # every role ran again on the recorded responses: the same requests, none spent
    assert [(c["role"], c["iteration"], c["requests"]) for c in doc["calls"]] == [
        (c["role"], c["iteration"], c["requests"]) for c in recorded["calls"]
    ]
    assert all(c["model"] == "replay" and c["tokens_in"] == 0 for c in doc["calls"])
    assert doc["requests"] == recorded["requests"]


def test_a_tampered_plan_in_the_journal_is_a_difference_and_exit_7(
    db: str, env: dict[str, str], recorded: dict[str, Any]
) -> None:
    changed = tamper(
        db,
        "UPDATE model_calls SET messages = replace(messages, 'Draft a plan for', 'Skip')"
        " WHERE run_id = 'trip' AND role = 'planner'",
    )
    assert changed == 1
    replayed = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == 7, replayed
    lines = replayed.out.splitlines()
    second = recorded["tasks"][1]
    assert f"differs: task {second['id']}: only recorded ('Draft a plan for Plan a trip')" in lines
    assert any("only replayed ('Skip Plan a trip')" in line for line in lines), lines
    assert lines[-1].startswith("replay again differs from run trip")


@pytest.mark.usefixtures("recorded")
def test_a_tampered_reflection_in_the_journal_is_a_difference_and_exit_7(
    db: str, env: dict[str, str]
) -> None:
    changed = tamper(
        db,
        "UPDATE model_calls SET messages = replace(messages, 'Double-check the results',"
        " 'Re-check the results') WHERE run_id = 'trip' AND role = 'reflector'",
    )
    assert changed == 2  # the second reflection's prompt names the check too
    replayed = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == 7, replayed
    assert "only replayed ('Re-check the results for Plan a trip')" in replayed.out


def test_a_run_recorded_before_plans_were_journaled_replays_from_its_outcomes(
    db: str, env: dict[str, str], recorded: dict[str, Any]
) -> None:
    assert tamper(db, "DELETE FROM model_calls WHERE run_id = 'trip'") == 3
    replayed = here("--db", db, "replay", "trip", "--as", "again", env=env)
    assert replayed.code == 0, replayed
    assert "replay again equals run trip" in replayed.out
    assert outcome(show_json(db, "again", env)) == outcome(recorded)
