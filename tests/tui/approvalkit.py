"""A database holding a run paused for approval, written through the real store as the loop
writes it: the demo agent's ``approve=2`` task asked to approve ``send_summary`` (request id
fixed, so that snapshots are stable)."""

from __future__ import annotations

from pathlib import Path

from tuikit import FakeClock, Seed, seed_run

from nanoagent_core import approvals
from nanoagent_core.approvals import ApprovalNeeded
from nanoagent_core.asking import Asked, asked
from nanoagent_core.models import Phase, RunStatus
from nanoagent_core.pause import pause_step
from nanoagent_core.sqlite import SQLiteStore

PAUSED_ID = "wait-7a1c0e"
REQUEST_ID = "ap-5e1f0a2b"
ARGUMENTS = {
    "to": "team@example.com",
    "subject": "Step 2 summary",
    "attachments": ["step-2.md"],
}
WHY = "step 2 wants to email its summary to the team"


async def seed_paused(path: Path) -> None:
    """One completed run, then one paused for approval on its second task."""
    clock = FakeClock()
    store = await SQLiteStore.open(path, clock=clock)
    try:
        await seed_run(store, clock, Seed("done-41f9aa", "Summarise the release notes", 3, 3,
                                           status=RunStatus.COMPLETED))  # fmt: skip
        clock.advance(7)
        seed = Seed(PAUSED_ID, "Send the weekly status report", tasks=4, done=1,
                    options=(("tasks", "4"), ("delay", "0.05"), ("followups", "0"),
                             ("approve", "2")))  # fmt: skip
        run = await seed_run(store, clock, seed)
        clock.advance(1)
        tasks = await store.get_all_tasks(PAUSED_ID)
        task = next(t for t in tasks if t.id == run.current_task_id)
        need = ApprovalNeeded("send_summary", ARGUMENTS, WHY)
        found = asked(PAUSED_ID, task, need, [])
        assert isinstance(found, Asked)
        request = found.request.model_copy(update={"id": REQUEST_ID})
        assert request.digest == approvals.digest_of(
            "send_summary", approvals.canonical_json(ARGUMENTS)
        )
        pause = found.outcome.pause
        assert pause is not None
        step = pause_step(
            pause.reason,
            pause.detail,
            phase=Phase.EXECUTING,
            iteration=run.iteration,
            current_task_id=task.id,
            events=(Asked(request, found.outcome).event(),),
        ).model_copy(update={"approval": request})
        await store.commit_step(PAUSED_ID, step, epoch=run.epoch)
    finally:
        await store.close()
