"""Budgets on the built-in ``llm`` agent (TestModel, offline), through the real command.

``run --max-tokens N``, N one more than the plan spends, pauses at the first body (cut by
pydantic-ai's UsageLimits: not a failure) with exit 6, in a real process (made once for the
module, its database copied for each test); the pause is durable (every check below opens
the database afresh, after that process is gone); ``resume`` without a higher budget pauses
again at once, running nothing; ``resume --max-tokens 50000`` completes it (in the
foreground, and in a detached worker). A cost budget on a model without a price pauses
conservatively after the plan (its call's price is unknown). Bad budgets are one line,
exit 2. (tests/agents/test_role_journal.py: a budget the plan itself goes over.) The
commands that only read, or whose claim is their output, exit status or what they write,
run in this process (agentkit.here); a few bad budgets also run as real processes.
"""

from __future__ import annotations

from typing import Any

import pytest
from agentkit import clean_env, cli, copy_db, here, list_json, show_json, wait_for

GOAL = "Plan a trip"
LLM = ["--agent", "llm", "--option", "model=test"]


def journal(doc: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (task["id"], entry["attempt"], entry["outcome"])
        for task in doc["tasks"]
        for entry in task["journal"]
    ]


def plan_tokens(db: str, env: dict[str, str]) -> int:
    """What the plan of GOAL spends (TestModel: the same every time), from a probe run (in
    this process: only what it writes counts)."""
    probe = here("--db", db, "run", GOAL, *LLM, "--run-id", "probe", env=env)
    assert probe.code == 0, probe
    [plan] = [c for c in show_json(db, "probe", env)["calls"] if c["role"] == "planner"]
    return plan["tokens_in"] + plan["tokens_out"]


@pytest.fixture(scope="module")
def paused_once(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database whose run ``trip`` a real ``run --max-tokens N`` process paused (no test
    writes to it: see ``paused_by_budget``)."""
    base = tmp_path_factory.mktemp("paused")
    env = clean_env(HOME=str(base), XDG_DATA_HOME=str(base / "xdg"))
    db = str(base / "runs.db")
    limit = str(plan_tokens(db, env) + 1)  # the plan fits; the first body gets 1 token
    done = cli("--db", db, "run", GOAL, *LLM, "--max-tokens", limit, "--run-id", "trip", env=env)
    assert done.code == 6, done
    assert done.err == "", done.err
    assert done.out.splitlines()[-1].startswith("run trip paused: budget: ")
    return db


@pytest.fixture
def paused_by_budget(db: str, env: dict[str, str], paused_once: str) -> dict[str, Any]:
    """This test's ``db``: a copy of ``paused_once``; its run's ``show --json``."""
    copy_db(paused_once, db)
    return show_json(db, "trip", env)


def test_max_tokens_1_pauses_with_exit_6_and_a_raised_resume_completes(
    db: str, env: dict[str, str], paused_by_budget: dict[str, Any]
) -> None:
    doc = paused_by_budget
    # durable: a fresh store reads the pause back, after the process that paused it ended
    limit = doc["max_tokens"]
    assert (doc["status"], doc["pause_reason"]) == ("paused", "budget")
    spent = doc["tokens_in"] + doc["tokens_out"]
    assert doc["pause_detail"].startswith(f"{spent:,} of {limit:,} tokens")
    assert [(c["role"], c["outcome"]) for c in doc["calls"]] == [("planner", "done")]
    first = doc["tasks"][0]
    # the cut attempt is journaled (its tokens counted), not failed; its task stays pending
    assert journal(doc) == [(first["id"], 1, "budget")]
    assert (first["status"], first["attempts"], first["error"]) == ("pending", 1, None)
    assert doc["tokens_in"] > 0
    assert "task_failed" not in [e["kind"] for e in doc["events"]]
    assert doc["events"][-1]["kind"] == "run_paused"
    [listed] = [r for r in list_json(db, env) if r["run_id"] == "trip"]
    assert (listed["status"], listed["pause_reason"]) == ("paused", "budget")
    only = here("--db", db, "list", "--status", "paused", env=env)
    assert only.code == 0, only
    assert only.out.splitlines()[1].startswith("paused:budget trip ")

    # no higher budget: it pauses again at once, before any body
    again = here("--db", db, "resume", "trip", env=env)
    assert again.code == 6, again
    after = show_json(db, "trip", env)
    assert journal(after) == journal(doc)
    assert after["tasks"][0]["attempts"] == 1
    started = [e for e in after["events"] if e["kind"] == "task_started"]
    assert len(started) == 1

    raised = here("--db", db, "resume", "trip", "--max-tokens", "50000", env=env)
    assert raised.code == 0, raised
    assert raised.out.splitlines()[-1] == "run trip completed"
    done = show_json(db, "trip", env)
    assert (done["status"], done["max_tokens"], done["pause_reason"]) == (
        "completed",
        50000,
        None,
    )
    # the cut task ran again under a new attempt; nothing else was cut or failed
    assert journal(done)[:2] == [(first["id"], 1, "budget"), (first["id"], 2, "done")]
    assert all(outcome == "done" for _, _, outcome in journal(done)[1:])
    assert all(t["status"] == "done" for t in done["tasks"])
    assert done["tokens_in"] + done["tokens_out"] <= 50000
    budget_set = [e["data"] for e in done["events"] if e["kind"] == "budget_set"]
    assert budget_set == [{"max_tokens": 50000, "max_cost_usd": None}]


@pytest.mark.usefixtures("paused_by_budget")
def test_a_detached_resume_takes_the_raised_budget_along(db: str, env: dict[str, str]) -> None:
    started = cli("--db", db, "resume", "trip", "--detach", "--max-tokens", "50000", env=env)
    assert started.code == 0, started
    done = wait_for(
        lambda: show_json(db, "trip", env),
        lambda doc: doc["status"] != "running",  # claimed (running) when --detach returned
        timeout=60,
    )
    assert (done["status"], done["max_tokens"]) == ("completed", 50000)


def test_an_unknown_price_counts_as_the_cost_budget_reached(db: str, env: dict[str, str]) -> None:
    run = cli("--db", db, "run", GOAL, *LLM, "--max-cost", "0.5", "--run-id", "c", env=env)
    assert run.code == 6, run
    assert run.err == "", run.err  # pydantic-ai's warning about the missing price is not shown
    doc = show_json(db, "c", env)
    assert (doc["status"], doc["pause_reason"], doc["max_cost_usd"]) == ("paused", "budget", 0.5)
    assert "cost unknown" in doc["pause_detail"]
    # the plan ran whole (its price is only known to be unknown afterwards); no body ran
    assert [(c["role"], c["outcome"], c["cost_usd"]) for c in doc["calls"]] == [
        ("planner", "done", None)
    ]
    assert journal(doc) == []
    assert doc["cost_complete"] is False
    lifted = here("--db", db, "resume", "c", "--max-cost", "none", env=env)
    assert lifted.code == 0, lifted
    done = show_json(db, "c", env)
    assert (done["status"], done["max_cost_usd"]) == ("completed", None)


@pytest.mark.parametrize(
    ("flag", "value", "where"),
    [
        ("--max-tokens", "0", "here"),
        ("--max-tokens", "-3", "here"),
        ("--max-tokens", "lots", "process"),  # real processes: no traceback from the interpreter
        ("--max-cost", "0", "here"),
        ("--max-cost", "-1", "here"),
        ("--max-cost", "nan", "process"),
        ("--max-cost", "cheap", "here"),
    ],
)
def test_a_bad_budget_is_one_line_and_exit_2(
    db: str, env: dict[str, str], flag: str, value: str, where: str
) -> None:
    bad = (cli if where == "process" else here)("--db", db, "run", GOAL, *LLM, flag, value, env=env)
    assert bad.code == 2, bad
    assert len(bad.err.splitlines()) == 1, bad.err
    assert "Traceback" not in bad.err
    assert here("--db", db, "list", "--json", env=env).out.strip() in ("[]", "")
