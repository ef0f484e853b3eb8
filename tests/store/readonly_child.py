"""Child process of the read-only tests: drop root privileges (when root), then use a
database.

Usage: python readonly_child.py DB_PATH UID. Prints one JSON report on stdout.

Everything is imported before the privileges go: the interpreter's own files may live in a
directory the unprivileged user cannot read.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import Owner, Phase, RunState, Task
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SQLiteStore


def outcome(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


async def attempt(call: Callable[[], Awaitable[object]]) -> dict[str, str]:
    try:
        await call()
    except NanoagentError as exc:
        return outcome(exc)
    return {"type": "none", "message": "the write went through"}


async def use(db: str, read_only: bool) -> dict[str, Any]:
    try:
        store = await SQLiteStore.open(db, read_only=read_only)
    except NanoagentError as exc:
        return {"open_error": outcome(exc)}
    try:
        report: dict[str, Any] = {
            "runs": [run.run_id for run in await store.list_runs()],
            "events": len(await store.read_events()),
        }
        owner = Owner(host="h", pid=os.getpid(), pid_started=0.0)
        new = RunState(run_id="new", goal="g", max_iterations=1)
        step = Step(phase=Phase.EXECUTING, iteration=1, events=(NewEvent(kind="note"),))
        writes: dict[str, Callable[[], Awaitable[object]]] = {
            "create_run": lambda: store.create_run(new),
            "claim_run": lambda: store.claim_run("r1", owner, expected_epoch=0, lease_seconds=5),
            "save_task": lambda: store.save_task("r1", Task(id="t", description="d"), epoch=0),
            "commit_step": lambda: store.commit_step("r1", step, epoch=0),
            "append_event": lambda: store.append_event("r1", NewEvent(kind="note")),
            "request_abort": lambda: store.request_abort("r1"),
        }
        if read_only:
            report["write"] = await attempt(writes["create_run"])
        else:
            report["writes"] = {name: await attempt(call) for name, call in writes.items()}
        report["runs_after"] = [run.run_id for run in await store.list_runs()]
        return report
    finally:
        await store.close()


async def main(db: str) -> dict[str, Any]:
    return {
        "uid": os.getuid(),
        "read_write_open": await use(db, read_only=False),
        "read_only_open": await use(db, read_only=True),
    }


if __name__ == "__main__":
    path, uid = sys.argv[1], int(sys.argv[2])
    if os.geteuid() == 0:  # as root: drop to ``uid``; otherwise run as is (uid is ours)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    print(json.dumps(asyncio.run(main(path))))
