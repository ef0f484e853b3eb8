"""``watch`` reports runs entering ``paused`` (from their ``run_paused`` event, with the
reason and detail), once; a first start with ``--all`` reports runs already paused; a watch
of other statuses ignores them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import PauseReason, Phase, RunState
from nanoagent_core.pause import pause_step
from nanoagent_core.procinfo import current_owner
from nanoagent_core.watch import WATCHABLE, Cursor, Transition, Watcher, parse_statuses


async def pause(store: MemoryStore, run_id: str, detail: str) -> None:
    await store.create_run(RunState(run_id=run_id, goal=f"goal of {run_id}", max_iterations=5))
    run = await store.claim_run(run_id, current_owner(), expected_epoch=0, lease_seconds=60)
    step = pause_step(
        PauseReason.BUDGET, detail, phase=Phase.PLANNING, iteration=0, current_task_id=None
    )
    await store.commit_step(run_id, step, epoch=run.epoch)


def watcher(
    store: MemoryStore, path: Path, statuses: str, seen: list[Transition]
) -> tuple[Watcher, Cursor]:
    async def report(transition: Transition) -> None:
        seen.append(transition)

    cursor = Cursor.open(path, "db")
    return Watcher(store, cursor, parse_statuses(statuses), report, asyncio.Event()), cursor


async def test_a_run_entering_paused_is_reported_once_with_its_reason(tmp_path: Path) -> None:
    assert "paused" in WATCHABLE
    store = MemoryStore()
    seen: list[Transition] = []
    watch, cursor = watcher(store, tmp_path / "state.json", "paused", seen)
    await watch.start(report_existing=False)
    await pause(store, "p1", "12 of 10 tokens spent")
    await watch.step()
    await watch.step()
    assert [(t.run_id, t.status, t.reason, t.goal) for t in seen] == [
        ("p1", "paused", "budget: 12 of 10 tokens spent", "goal of p1")
    ]
    assert seen[0].environment()["NANOAGENT_STATUS"] == "paused"
    cursor.close()


async def test_all_reports_runs_already_paused_and_other_watches_ignore_them(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    await pause(store, "early", "5 of 1 tokens spent")
    seen: list[Transition] = []
    watch, cursor = watcher(store, tmp_path / "a.json", "paused", seen)
    await watch.start(report_existing=True)
    assert [(t.run_id, t.reason) for t in seen] == [("early", "budget: 5 of 1 tokens spent")]
    cursor.close()

    others: list[Transition] = []
    watch, cursor = watcher(store, tmp_path / "b.json", "crashed,failed", others)
    await watch.start(report_existing=True)
    await pause(store, "later", "x")
    await watch.step()
    assert others == []
    cursor.close()
