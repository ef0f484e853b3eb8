"""The built-in ``llm`` agent on ``model=test``: a run planned, executed and reflected by
pydantic-ai Agents completes through the real command (a real process: no warning, no
traceback), through resume_run on a memory store, and after a kill -9 at several checkpoints
(a real process, that kills itself) followed by a resume (offline throughout). The commands
whose claim is what they print or write run in this process (agentkit.here)."""

from __future__ import annotations

import signal

import pytest
from agentkit import cli, here, outcome, show_json

from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import RunState, RunStatus, TaskStatus
from nanoagent_core.worker import FAULT_KILL_AFTER_COMMIT, resume_run

GOAL = "Plan a trip"
LLM = ["--agent", "llm", "--option", "model=test"]


def test_a_run_of_the_llm_agent_completes_through_the_command(db: str, env: dict[str, str]):
    done = cli("--db", db, "run", GOAL, *LLM, "--run-id", "trip", env=env)
    assert done.code == 0, done
    assert done.err == "", done.err  # no warning, no traceback
    assert "run trip completed" in done.out
    doc = show_json(db, "trip", env)
    assert doc["status"] == "completed"
    assert doc["agent"] == "llm"
    tasks = doc["tasks"]
    # TestModel's plan: three tasks named after the goal; the first reflection adds a check
    assert [t["description"] for t in tasks] == [
        "Gather what is known about Plan a trip",
        "Draft a plan for Plan a trip",
        "Review the plan for Plan a trip",
        "Double-check the results for Plan a trip",
    ]
    assert all(t["status"] == "done" and t["attempts"] == 1 for t in tasks)
    assert all(doc["results"][t["id"]].startswith(t["description"]) for t in tasks)
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds.count("planned") == 1
    assert kinds.count("reflected") == 2  # one adds the check, the last says done
    assert kinds[-1] == "run_completed"
    assert doc["events"][-1]["data"]["reason"] == "reflection"


async def test_a_run_of_the_llm_agent_completes_through_resume_run():
    store = MemoryStore()
    await store.create_run(
        RunState(
            run_id="r1", goal=GOAL, max_iterations=20, agent="llm", agent_options={"model": "test"}
        )
    )
    final = await resume_run(store, "r1", handle_signals=False)
    assert final.status is RunStatus.COMPLETED
    tasks = await store.get_all_tasks("r1")
    assert len(tasks) == 4
    assert all(t.status is TaskStatus.DONE for t in tasks)
    assert final.tasks_done == 4
    assert final.result is not None
    assert "Double-check" in final.result


@pytest.fixture(scope="module")
def clean_outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The outcome of an uninterrupted run, to compare resumed ones with."""
    from agentkit import clean_env

    base = tmp_path_factory.mktemp("clean")
    env = clean_env(HOME=str(base), XDG_DATA_HOME=str(base / "xdg"))
    db = str(base / "runs.db")
    done = here("--db", db, "run", GOAL, *LLM, "--run-id", "clean", env=env)
    assert done.code == 0, done
    return outcome(show_json(db, "clean", env))


# commits: 1 plan, 2-4 the three tasks' outcomes, 5 the reflection that adds a task, 6 its
# outcome, 7 the reflection that says done. Killed after planning, after the second task's
# outcome, and after the reflection that adds a task.
@pytest.mark.parametrize("k", [1, 3, 5])
def test_kill_9_mid_run_then_resume_completes(
    db: str, env: dict[str, str], clean_outcome: dict[str, object], k: int
):
    run_id = f"killed-{k}"
    faulty = {**env, FAULT_KILL_AFTER_COMMIT: str(k)}
    killed = cli("--db", db, "run", GOAL, *LLM, "--run-id", run_id, env=faulty)
    assert killed.code == -signal.SIGKILL, killed
    assert show_json(db, run_id, env)["status"] == "crashed"
    resumed = here("--db", db, "resume", run_id, env=env)
    assert resumed.code == 0, resumed
    doc = show_json(db, run_id, env)
    assert outcome(doc) == clean_outcome
    # no task whose outcome committed ran again: only the one in flight (if any) did
    assert sum(t["attempts"] for t in doc["tasks"]) <= len(doc["tasks"]) + 1
