"""Child-process targets for the queue tests: pool-style claimers racing on one store (a
SQLite file or a PostgreSQL schema), each with a store of its own (spawn start method)."""

from __future__ import annotations

import asyncio
import os
import traceback
from typing import Any

from prockit import BARRIER_TIMEOUT, Putter, Waitable

from nanoagent_core.models import Owner
from nanoagent_core.stores import open_store


def queue_claimer(location: str, host: str, batch: int, barrier: Waitable, out: Putter) -> None:
    """After the barrier, claim queued runs until the queue is empty (``batch`` 1: one by one
    with ``claim_next``; else ``claim_queued`` batches of that size); report
    ``("ok", pid, [(run id, epoch), ...])`` in the order claimed."""

    async def main() -> list[tuple[str, int]]:
        store = await open_store(location, create=False)
        owner = Owner(host=host, pid=os.getpid(), pid_started=0.0)
        claimed: list[tuple[str, int]] = []
        try:
            barrier.wait(BARRIER_TIMEOUT)
            while True:
                if batch == 1:
                    one = await store.claim_next(owner, lease_seconds=600)
                    runs = [] if one is None else [one]
                else:
                    runs = await store.claim_queued(owner, lease_seconds=600, limit=batch)
                if not runs:
                    return claimed
                claimed += [(run.run_id, run.epoch) for run in runs]
        finally:
            await store.close()

    try:
        report: Any = ("ok", os.getpid(), asyncio.run(main()))
    except BaseException:
        report = ("error", os.getpid(), traceback.format_exc())
    out.put(report)
