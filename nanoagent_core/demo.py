"""``nanoagent demo``: real runs to watch, including a genuinely crashed one.

Starts several demo runs as real detached workers (different goals, sizes and speeds; one
whose task fails once and retries; one long enough to abort; one whose second task waits for a
person to approve an action), then SIGKILLs one worker mid-run so that a crashed run is there
to resume. When the optional extra ``llm`` is
installed, one more run uses the ``llm`` agent on ``model=test`` (offline, pydantic-ai's
TestModel), so that a run planned, executed and reflected by pydantic-ai Agents is there too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import signal
import time
from dataclasses import dataclass
from datetime import timedelta

from nanoagent_core.defaults import DEFAULT_MAX_ITERATIONS
from nanoagent_core.errors import NanoagentError
from nanoagent_core.launch import reap_workers, start_worker
from nanoagent_core.models import RunState, utc_now
from nanoagent_core.stores import open_store

__all__ = ["DEMO_RUNS", "LLM_DEMO_RUN", "DemoRun", "demo_runs", "start_demo_runs"]


@dataclass(frozen=True)
class DemoRun:
    name: str
    goal: str
    options: dict[str, str]
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    crash: bool = False  #: SIGKILL its worker once a task is done
    agent: str = "demo"


DEMO_RUNS = (
    DemoRun("guide", "Write a field guide to durable agent loops",
            {"tasks": "6", "delay": "1.5", "followups": "2"}),
    DemoRun("bench", "Benchmark three SQLite journal modes",
            {"tasks": "4", "delay": "1.0", "fail": "2"}),
    DemoRun("survey", "Survey every open issue in the tracker and triage it",
            {"tasks": "12", "delay": "5", "followups": "3"}),
    DemoRun("notes", "Summarise the release notes", {"tasks": "3", "delay": "0.4"}),
    DemoRun("migrate", "Draft the database migration plan",
            {"tasks": "8", "delay": "1.2", "followups": "2"}, crash=True),
    # task 2 asks a person to approve sending a summary: the run waits, paused (approval)
    DemoRun("report", "Send the weekly status report",
            {"tasks": "4", "delay": "0.5", "approve": "2"}),
)  # fmt: skip


#: Started too when the extra ``llm`` (pydantic-ai) is installed.
LLM_DEMO_RUN = DemoRun("llm", "Plan a weekend trip to Lisbon", {"model": "test"}, agent="llm")


def _llm_installed() -> bool:
    try:
        return importlib.util.find_spec("pydantic_ai") is not None
    except (ImportError, ValueError):
        return False


def demo_runs() -> tuple[DemoRun, ...]:
    """The runs ``nanoagent demo`` starts here: the llm one only with the extra installed."""
    return (*DEMO_RUNS, LLM_DEMO_RUN) if _llm_installed() else DEMO_RUNS


async def start_demo_runs(location: str, *, crash_timeout: float = 30.0) -> list[str]:
    tag = secrets.token_hex(2)
    ids: list[str] = []
    crash_id: str | None = None
    async with await open_store(location) as store:
        for demo in demo_runs():
            run_id = f"demo-{demo.name}-{tag}"
            await store.create_run(
                RunState(
                    run_id=run_id,
                    goal=demo.goal,
                    max_iterations=demo.max_iterations,
                    agent=demo.agent,
                    agent_options=demo.options,
                    lease_expires_at=utc_now() + timedelta(seconds=10),
                )
            )
            ids.append(run_id)
            if demo.crash:
                crash_id = run_id
        # each worker has claimed its run (or its first error line is raised) before return
        await asyncio.gather(*(start_worker(location, run_id, new=True) for run_id in ids))
        if crash_id is not None:
            await _crash_midway(store, crash_id, crash_timeout)
    return ids


async def _crash_midway(store: object, run_id: str, timeout: float) -> None:
    from nanoagent_core.stores import AnyStore

    assert isinstance(store, AnyStore)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await store.get_run(run_id)
        if run.owner is not None and run.tasks_done >= 2 and run.phase.value == "executing":
            os.kill(run.owner.pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            reap_workers()
            return
        await asyncio.sleep(0.1)
    raise NanoagentError(f"demo run {run_id} did not get going within {timeout:.0f}s")
