"""The conversation journal and the usage ledger through the real command (offline: the
``llm`` agent on ``model=test``): one journal entry per attempt whose outcome committed, with
pydantic-ai's own messages; run totals equal to the sums over the journal (the attempts,
and the planner's and reflector's calls), in ``list --json``
and ``show --json``; and after a kill -9 (in a body, or after a commit) and a resume, no
attempt journaled twice and none lost."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
from agentkit import cli, list_json, show_json
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelRequest, ModelResponse

from nanoagent_core.ledger import token_count
from nanoagent_core.worker import FAULT_KILL_AFTER_COMMIT, FAULT_KILL_IN_BODY

GOAL = "Plan a trip"
LLM = ["--agent", "llm", "--option", "model=test"]
LEDGER = ("requests", "tokens_in", "tokens_out", "cost_usd", "cost_complete")


def journal(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(t["id"], entry) for t in doc["tasks"] for entry in t["journal"]]


def check_ledger(doc: dict[str, Any]) -> None:
    """Every attempt whose outcome committed has exactly one entry, under its own attempt
    number; the run's totals are the sums over the entries."""
    for t in doc["tasks"]:
        numbers = [e["attempt"] for e in t["journal"]]
        assert numbers == sorted(set(numbers)), t  # none twice
        assert all(1 <= n <= t["attempts"] for n in numbers), t
        # the last attempt of a done task is journaled (its outcome committed)
        assert t["status"] != "done" or numbers[-1] == t["attempts"], t
    calls = doc["calls"]  # the planner's and reflector's, counted in the totals too
    keys = [(c["role"], c["iteration"], c["call"]) for c in calls]
    assert len(keys) == len(set(keys))  # none twice
    entries = [e for _, e in journal(doc)] + calls
    assert doc["requests"] == sum(e["requests"] for e in entries)
    assert doc["tokens_in"] == sum(e["tokens_in"] for e in entries)
    assert doc["tokens_out"] == sum(e["tokens_out"] for e in entries)
    # TestModel's model 'test' has no price: unknown, never a guess
    assert all(e["cost_usd"] is None and e["model"] == "test" for e in entries)
    assert (doc["cost_usd"], doc["cost_complete"]) == (None, False)


def test_an_llm_run_journals_each_attempt_and_totals_its_usage(db: str, env: dict[str, str]):
    done = cli("--db", db, "run", GOAL, *LLM, "--run-id", "trip", env=env)
    assert done.code == 0, done
    doc = show_json(db, "trip", env)
    entries = journal(doc)
    assert [task_id for task_id, _ in entries] == [t["id"] for t in doc["tasks"]]
    for task_id, entry in entries:
        assert (entry["attempt"], entry["outcome"]) == (1, "done")
        assert min(entry["requests"], entry["tokens_in"], entry["tokens_out"]) >= 1
        assert entry["seconds"] >= 0
        # pydantic-ai's own serialization: it reads back into its messages
        messages = ModelMessagesTypeAdapter.validate_json(json.dumps(entry["messages"]))
        assert isinstance(messages[0], ModelRequest)
        assert any(isinstance(m, ModelResponse) and m.model_name == "test" for m in messages)
        assert task_id in json.dumps(entry["messages"])  # the prompt names the task
    check_ledger(doc)
    assert doc["tokens_in"] > 0
    listed = next(r for r in list_json(db, env) if r["run_id"] == "trip")
    assert {k: listed[k] for k in LEDGER} == {k: doc[k] for k in LEDGER}
    text = cli("--db", db, "list", env=env)
    assert text.code == 0, text
    header, row = text.out.splitlines()[:2]
    assert header.split()[5] == "TOKENS"
    assert row.split()[1] == "trip"
    assert row.split()[5] == token_count(doc["tokens_in"] + doc["tokens_out"])


def test_a_demo_run_has_no_journal_and_zero_usage(db: str, env: dict[str, str]):
    quick = ["--option", "tasks=2", "--option", "followups=0", "--option", "delay=0"]
    done = cli("--db", db, "run", "a demo goal", *quick, "--run-id", "plain", env=env)
    assert done.code == 0, done
    doc = show_json(db, "plain", env)
    assert journal(doc) == []
    assert {k: doc[k] for k in LEDGER} == {
        "requests": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": None,
        "cost_complete": True,
    }
    text = cli("--db", db, "list", env=env)
    assert text.out.splitlines()[1].split()[5] == "-"  # the TOKENS column


@pytest.fixture(scope="module")
def clean_ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from agentkit import clean_env

    base = tmp_path_factory.mktemp("clean")
    env = clean_env(HOME=str(base), XDG_DATA_HOME=str(base / "xdg"))
    db = str(base / "runs.db")
    done = cli("--db", db, "run", GOAL, *LLM, "--run-id", "clean", env=env)
    assert done.code == 0, done
    return show_json(db, "clean", env)


# bodies: 1-3 the planned tasks, 4 the check the first reflection adds. Commits: 1 plan,
# 2-4 the three tasks' outcomes, 5 the reflection, 6 the check's outcome.
@pytest.mark.parametrize(
    ("fault", "k"),
    [(FAULT_KILL_IN_BODY, 2), (FAULT_KILL_IN_BODY, 4), (FAULT_KILL_AFTER_COMMIT, 3)],
)
def test_kill_9_then_resume_journals_no_attempt_twice_and_loses_none(
    db: str, env: dict[str, str], clean_ledger: dict[str, Any], fault: str, k: int
):
    run_id = f"killed-{k}"
    killed = cli("--db", db, "run", GOAL, *LLM, "--run-id", run_id, env={**env, fault: str(k)})
    assert killed.code == -signal.SIGKILL, killed
    before = show_json(db, run_id, env)
    check_ledger(before)
    resumed = cli("--db", db, "resume", run_id, env=env)
    assert resumed.code == 0, resumed
    doc = show_json(db, run_id, env)
    assert doc["status"] == "completed"
    check_ledger(doc)
    # what was journaled before the kill is still there, unchanged
    kept = {(task_id, e["attempt"]): e for task_id, e in journal(doc)}
    assert all(kept[(task_id, e["attempt"])] == e for task_id, e in journal(before))
    # each task's committed outcome has its entry: one per task here (TestModel succeeds);
    # a body killed in flight left none (its messages are absent, never half), and its
    # rerun is journaled under the next attempt number
    assert [t["id"] for t in doc["tasks"]] == [t["id"] for t in clean_ledger["tasks"]]
    for t in doc["tasks"]:
        assert [e["attempt"] for e in t["journal"]] == [t["attempts"]], t
    if fault == FAULT_KILL_IN_BODY:
        assert sum(t["attempts"] for t in doc["tasks"]) == len(doc["tasks"]) + 1
    # the same usage as an uninterrupted run: nothing counted twice, nothing lost
    assert len(journal(doc)) == len(journal(clean_ledger))
    assert doc["requests"] == clean_ledger["requests"]
    assert [(c["role"], c["iteration"], c["outcome"]) for c in doc["calls"]] == [
        (c["role"], c["iteration"], c["outcome"]) for c in clean_ledger["calls"]
    ]
