"""One worker process of the concurrency benchmark.

``python -m bench.worker_proc DB RUN_ID TASKS [DELAY]``: opens the store (DB: a SQLite
path or a ``postgresql://...?schema=NAME`` URL), claims the run (created by
the parent with the no-op agent), prints ``ready``, waits for a line on stdin, then drives
the run to its end through the real worker machinery (``drive``: loop, heartbeats, lease)
and prints one JSON line: start and end (``time.monotonic()``, comparable across processes
on Linux), tasks done, final status and the error, if any. With DELAY, each task body
sleeps a random 0.5 to 1.5 times DELAY seconds (a paced writer for the live-latency test).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.agent import make_noop_agent
from nanoagent_core.loop import Loop
from nanoagent_core.procinfo import current_owner
from nanoagent_core.stores import open_store
from nanoagent_core.worker import drive


async def main(db: str, run_id: str, tasks: int, delay: float = 0.0) -> dict[str, object]:
    report: dict[str, object] = {"run_id": run_id, "tasks": 0, "status": None, "error": None}
    store = await open_store(db)
    try:
        run = await store.get_run(run_id)
        claimed = await store.claim_run(
            run_id, current_owner(), expected_epoch=run.epoch, lease_seconds=30
        )
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        loop = Loop(store, claimed, make_noop_agent(tasks, delay=delay))
        report["start"] = time.monotonic()
        final = await drive(store, loop, heartbeat=2.0, handle_signals=False)
        report["end"] = time.monotonic()
        report["tasks"] = final.tasks_done
        report["status"] = final.status.value
        report["error"] = final.error
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await store.close()
    return report


if __name__ == "__main__":
    pace = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    out = asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), pace))
    print(json.dumps(out), flush=True)
