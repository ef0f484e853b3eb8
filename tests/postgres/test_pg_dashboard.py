"""The dashboard's live data over PostgreSQL: it opens the database, shows its runs, and a
change committed by another connection arrives through LISTEN/NOTIFY on the next poll."""

from __future__ import annotations

import asyncio
import time

from nanoagent_core.models import Owner, Phase, RunState, Task, utc_now
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_tui.live import Health, LiveData, SortMode


async def test_dashboard_data_goes_live_and_sees_another_writer(
    location: str, store: PostgresStore
) -> None:
    await store.create_run(RunState(run_id="pg-run", goal="watch me", max_iterations=5))
    live = LiveData(location)
    try:
        await live.poll(utc_now())
        assert live.health is Health.LIVE, live.message
        assert set(live.runs) == {"pg-run"}

        claimed = await store.claim_run(
            "pg-run",
            Owner(host="elsewhere", pid=1, pid_started=1.0),
            expected_epoch=0,
            lease_seconds=30,
        )
        await store.commit_step(
            "pg-run",
            Step(
                phase=Phase.EXECUTING,
                iteration=1,
                current_task_id="t1",
                tasks=(Task(id="t1", description="first", attempts=1),),
                events=(NewEvent(kind="task_started", data={"task_id": "t1"}),),
            ),
            epoch=claimed.epoch,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await live.poll(utc_now())
            run = live.runs.get("pg-run")
            if run is not None and run.phase is Phase.EXECUTING:
                break
            await asyncio.sleep(0.02)
        run = live.runs["pg-run"]
        assert (run.phase, run.current_task_id, run.tasks_total) == (Phase.EXECUTING, "t1", 1)
        (shown,) = live.visible(utc_now(), SortMode.ACTIVITY)
        assert shown[1] == "running"  # another host, live lease: running, not crashed
    finally:
        await live.close()
