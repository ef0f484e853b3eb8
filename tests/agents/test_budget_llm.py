"""Budgets on the built-in ``llm`` agent (TestModel, offline), through the real command.

``run --max-tokens N``, N one more than the plan spends, pauses at the first body (cut by
pydantic-ai's UsageLimits: not a failure) with exit 6; the pause is durable (every check
below is a fresh process reading the database); ``resume`` without a higher budget pauses
again at once, running nothing; ``resume --max-tokens 50000`` completes it (in the
foreground, and in a detached worker). A cost budget on a model without a price pauses
conservatively after the plan (its call's price is unknown). Bad budgets are one line,
exit 2. (tests/agents/test_role_journal.py: a budget the plan itself goes over.)
"""

from __future__ import annotations

from typing import Any

import pytest
from agentkit import cli, list_json, show_json, wait_for

GOAL = "Plan a trip"
LLM = ["--agent", "llm", "--option", "model=test"]


def journal(doc: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (task["id"], entry["attempt"], entry["outcome"])
        for task in doc["tasks"]
        for entry in task["journal"]
    ]


def plan_tokens(db: str, env: dict[str, str]) -> int:
    """What the plan of GOAL spends (TestModel: the same every time), from a probe run."""
    probe = cli("--db", db, "run", GOAL, *LLM, "--run-id", "probe", env=env)
    assert probe.code == 0, probe
    [plan] = [c for c in show_json(db, "probe", env)["calls"] if c["role"] == "planner"]
    return plan["tokens_in"] + plan["tokens_out"]


def paused_by_budget(db: str, env: dict[str, str]) -> dict[str, Any]:
    limit = str(plan_tokens(db, env) + 1)  # the plan fits; the first body gets 1 token
    done = cli("--db", db, "run", GOAL, *LLM, "--max-tokens", limit, "--run-id", "trip", env=env)
    assert done.code == 6, done
    assert done.err == "", done.err
    assert done.out.splitlines()[-1].startswith("run trip paused: budget: ")
    return show_json(db, "trip", env)


def test_max_tokens_1_pauses_with_exit_6_and_a_raised_resume_completes(
    db: str, env: dict[str, str]
) -> None:
    doc = paused_by_budget(db, env)
    # durable: a fresh process reads the pause back
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
    only = cli("--db", db, "list", "--status", "paused", env=env)
    assert only.code == 0, only
    assert only.out.splitlines()[1].startswith("paused:budget trip ")

    # no higher budget: it pauses again at once, before any body
    again = cli("--db", db, "resume", "trip", env=env)
    assert again.code == 6, again
    after = show_json(db, "trip", env)
    assert journal(after) == journal(doc)
    assert after["tasks"][0]["attempts"] == 1
    started = [e for e in after["events"] if e["kind"] == "task_started"]
    assert len(started) == 1

    raised = cli("--db", db, "resume", "trip", "--max-tokens", "50000", env=env)
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


def test_a_detached_resume_takes_the_raised_budget_along(db: str, env: dict[str, str]) -> None:
    paused_by_budget(db, env)
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
    lifted = cli("--db", db, "resume", "c", "--max-cost", "none", env=env)
    assert lifted.code == 0, lifted
    done = show_json(db, "c", env)
    assert (done["status"], done["max_cost_usd"]) == ("completed", None)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-tokens", "0"),
        ("--max-tokens", "-3"),
        ("--max-tokens", "lots"),
        ("--max-cost", "0"),
        ("--max-cost", "-1"),
        ("--max-cost", "nan"),
        ("--max-cost", "cheap"),
    ],
)
def test_a_bad_budget_is_one_line_and_exit_2(
    db: str, env: dict[str, str], flag: str, value: str
) -> None:
    bad = cli("--db", db, "run", GOAL, *LLM, flag, value, env=env)
    assert bad.code == 2, bad
    assert len(bad.err.splitlines()) == 1, bad.err
    assert "Traceback" not in bad.err
    assert cli("--db", db, "list", "--json", env=env).out.strip() in ("[]", "")
