"""The command line on a paused run (a real SQLite file, real subprocesses): ``list`` and
``list --status paused`` show it with its reason, as lines and as JSON; ``show`` says why it
is paused and how to continue it; ``show --follow`` of a paused run ends at once with exit 6;
``abort`` aborts it at once (no live worker holds it)."""

from __future__ import annotations

import json

from loopkit import acli_here, read_run

from nanoagent_core.models import PauseReason, Phase, RunState, RunStatus
from nanoagent_core.pause import pause_step
from nanoagent_core.procinfo import current_owner
from nanoagent_core.sqlite import SQLiteStore


async def seed(db: str) -> None:
    """Two runs: ``held`` paused by its budget, ``other`` interrupted."""
    store = await SQLiteStore.open(db)
    try:
        for run_id in ("held", "other"):
            await store.create_run(
                RunState(run_id=run_id, goal=f"goal {run_id}", max_iterations=5, max_tokens=10)
            )
            run = await store.claim_run(run_id, current_owner(), expected_epoch=0,
                                        lease_seconds=60)  # fmt: skip
            if run_id == "held":
                step = pause_step(
                    PauseReason.BUDGET,
                    "12 of 10 tokens spent",
                    phase=Phase.REFLECTING,
                    iteration=1,
                    current_task_id=None,
                )
            else:
                from nanoagent_core.protocols import Step

                step = Step(
                    phase=Phase.PLANNING, iteration=0, status=RunStatus.INTERRUPTED, error="sig"
                )
            await store.commit_step(run_id, step, epoch=run.epoch)
    finally:
        await store.close()


async def test_list_shows_paused_runs_with_their_reason(db: str, env: dict[str, str]) -> None:
    await seed(db)
    lines = await acli_here("--db", db, "list", env=env)
    assert lines.code == 0, lines.err
    [held] = [line for line in lines.out.splitlines() if " held " in line]
    assert held.startswith("paused:budget ")
    only = await acli_here("--db", db, "list", "--status", "paused", env=env)
    assert only.code == 0, only.err
    rows = only.out.splitlines()[1:]
    assert len(rows) == 1
    assert "held" in rows[0]
    doc = await acli_here("--db", db, "list", "--status", "paused", "--json", env=env)
    assert doc.code == 0, doc.err
    [summary] = json.loads(doc.out)
    assert {k: summary[k] for k in ("run_id", "status", "pause_reason", "pause_detail")} == {
        "run_id": "held",
        "status": "paused",
        "pause_reason": "budget",
        "pause_detail": "12 of 10 tokens spent",
    }
    assert summary["max_tokens"] == 10
    every = json.loads((await acli_here("--db", db, "list", "--json", env=env)).out)
    assert {s["run_id"]: s["pause_reason"] for s in every} == {"held": "budget", "other": None}


async def test_show_says_why_and_how_to_continue(db: str, env: dict[str, str]) -> None:
    await seed(db)
    shown = await acli_here("--db", db, "show", "held", env=env)
    assert shown.code == 0, shown.err
    assert "run held  paused  reflecting" in shown.out
    assert "paused: budget: 12 of 10 tokens spent; 'nanoagent resume held --max-tokens N'" in (
        shown.out
    )
    assert "budget: 0 of 10 tokens" in shown.out
    doc = json.loads((await acli_here("--db", db, "show", "held", "--json", env=env)).out)
    assert (doc["status"], doc["pause_reason"], doc["error"]) == ("paused", "budget", None)
    assert doc["events"][-1]["kind"] == "run_paused"
    assert doc["events"][-1]["data"]["reason"] == "budget"


async def test_follow_of_a_paused_run_ends_with_exit_6(db: str, env: dict[str, str]) -> None:
    await seed(db)
    followed = await acli_here("--db", db, "show", "held", "--follow", env=env)
    assert followed.code == 6, followed.err
    lines = followed.out.splitlines()
    assert "run_paused" in lines[-2]
    assert "reason=budget" in lines[-2]
    assert lines[-1] == "run held paused: budget: 12 of 10 tokens spent"


async def test_abort_aborts_a_paused_run_at_once(db: str, env: dict[str, str]) -> None:
    await seed(db)
    aborted = await acli_here("--db", db, "abort", "held", env=env)
    assert aborted.code == 0, aborted.err
    run = await read_run(db, "held")
    assert (run.status, run.pause_reason) == (RunStatus.ABORTED, None)
