"""A budget pause on PostgreSQL through the real command (TestModel, offline): ``run
--max-tokens 1`` (a real process) exits 6 with the run paused (budget), a fresh store lists
it with ``--status paused`` once that process is gone, and ``resume --max-tokens 50000``
completes it (these in this process: cmdkit.run_here). The plan itself goes over a budget of
1 token: its cut call is journaled (``calls``), then asked again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pydantic_ai.models
from cmdkit import run_here

from nanoagent_tui.cli import main

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False

NANOAGENT = str(Path(sys.executable).with_name("nanoagent"))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NANOAGENT_")}


async def acli(*args: str) -> subprocess.CompletedProcess[str]:
    """``nanoagent ARGS`` in a fresh process (no NANOAGENT_* variable), to its end."""
    return await asyncio.to_thread(
        subprocess.run,
        [NANOAGENT, *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


LLM = ["--agent", "llm", "--option", "model=test"]


async def ahere(*args: str) -> subprocess.CompletedProcess[str]:
    """``nanoagent ARGS`` in this process (no NANOAGENT_* variable), to its end."""
    code, out, err = await asyncio.to_thread(run_here, main, args, clean_env())
    return subprocess.CompletedProcess(list(args), code, out, err)


async def test_a_budget_pause_and_a_raised_resume_on_postgres(location: str) -> None:
    env_db = ["--db", location]
    paused = await acli(*env_db, "run", "Plan a trip", *LLM, "--max-tokens", "1",
                        "--run-id", "trip")  # fmt: skip
    assert paused.returncode == 6, paused
    listed = await ahere(*env_db, "list", "--status", "paused", "--json")
    assert listed.returncode == 0, listed
    [summary] = json.loads(listed.stdout)
    assert (summary["run_id"], summary["pause_reason"], summary["max_tokens"]) == (
        "trip",
        "budget",
        1,
    )
    done = await ahere(*env_db, "resume", "trip", "--max-tokens", "50000")
    assert done.returncode == 0, done
    shown = json.loads((await ahere(*env_db, "show", "trip", "--json")).stdout)
    assert (shown["status"], shown["max_tokens"]) == ("completed", 50000)
    calls = [(c["role"], c["call"], c["outcome"]) for c in shown["calls"]]
    assert calls[:2] == [("planner", 1, "budget"), ("planner", 2, "done")]
    assert {outcome for _, _, outcome in calls[2:]} == {"done"}
    outcomes = [e["outcome"] for t in shown["tasks"] for e in t["journal"]]
    assert set(outcomes) == {"done"}
    journal = [e for t in shown["tasks"] for e in t["journal"]] + shown["calls"]
    assert shown["tokens_in"] == sum(e["tokens_in"] for e in journal)
