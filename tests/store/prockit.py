"""Worker functions for child processes that share one store: a SQLite file or a PostgreSQL
schema alike (each opens its location with ``open_store``, as the ``nanoagent`` command does).

A plain module on ``sys.path`` (pytest's ``pythonpath``); children started with the ``spawn``
method inherit that path, so these functions can be their targets. No connection crosses a
process: each child opens its own store.

Every worker reports on ``out`` with ``("ok", tag, value)`` or ``("error", tag, traceback)``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.forkserver
import os
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from multiprocessing.context import ForkServerContext
from typing import Any, Protocol, TypeVar

from storekit import new_run, step_for

from nanoagent_core.errors import RunBusyError
from nanoagent_core.models import Owner
from nanoagent_core.stores import open_store

BARRIER_TIMEOUT = 60.0
T = TypeVar("T")

#: what the fork server imports once, before it forks each child (the kits themselves are
#: cheap; a child started by ``spawn`` re-imports all this, ~0.3 s of CPU each)
PRELOAD = [
    "asyncio",
    "pytest",
    "psycopg",
    "nanoagent_core.errors",
    "nanoagent_core.models",
    "nanoagent_core.protocols",
    "nanoagent_core.stores",
]


@contextmanager
def forkserver() -> Iterator[ForkServerContext]:
    """A multiprocessing context whose children are forked from a fresh server process that
    has imported ``PRELOAD`` and opened nothing: every child is still a real process of its
    own that opens its own store (no connection crosses a fork: the server never had one),
    but none pays for the imports. The server is stopped (and waited for, so the CPU of its
    children is this process's children's) when the block ends."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    try:
        yield ctx
    finally:
        multiprocessing.forkserver._forkserver._stop()  # pyright: ignore[reportAttributeAccessIssue]


class Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> Any: ...


class Settable(Protocol):
    def is_set(self) -> bool: ...


class Flag(Settable, Protocol):
    def set(self) -> None: ...


class Putter(Protocol):
    def put(self, obj: Any) -> None: ...


def _report(out: Putter, tag: str, main: Callable[[], Coroutine[Any, Any, T]]) -> None:
    try:
        out.put(("ok", tag, asyncio.run(main())))
    except BaseException:
        out.put(("error", tag, traceback.format_exc()))


def commit_worker(
    location: str,
    run_id: str,
    steps: int,
    barrier: Waitable,
    out: Putter,
    halfway: Waitable | None = None,
) -> None:
    """Create and claim ``run_id``, then commit ``steps`` steps to it, one transaction each.
    With ``halfway``, wait on it after half the steps (so a reader surely reads mid-write)."""

    async def main() -> int:
        store = await open_store(location)
        try:
            await store.create_run(new_run(run_id))
            run = await store.claim_run(
                run_id,
                Owner(host="test-host", pid=os.getpid(), pid_started=0.0),
                expected_epoch=0,
                lease_seconds=600,
            )
            barrier.wait(BARRIER_TIMEOUT)
            for i in range(steps):
                if halfway is not None and i == steps // 2:
                    halfway.wait(BARRIER_TIMEOUT)
                await store.commit_step(run_id, step_for(i), epoch=run.epoch)
            return steps
        finally:
            await store.close()

    _report(out, run_id, main)


def reader_worker(
    location: str, barrier: Waitable, stop: Settable, out: Putter, saw: Flag | None = None
) -> None:
    """Follow the event log by id until told to stop (then drain it): every id must come
    exactly once, in order, with no gap; every listed run must be self-consistent (a
    half-committed step would show more tasks than iterations). ``saw`` is set once a read
    has seen some events before the stop (writers waiting on it are then surely mid-way)."""

    async def main() -> dict[str, Any]:
        store = await open_store(location, read_only=True)
        last_id = 0
        seen = 0
        reads_while_writing = 0
        problems: list[str] = []
        try:
            barrier.wait(BARRIER_TIMEOUT)
            while True:
                stopping = stop.is_set()
                for run in await store.list_runs(limit=1000):
                    if not run.tasks_total == run.tasks_done == run.iteration:
                        problems.append(
                            f"{run.run_id}: iteration {run.iteration} but tasks "
                            f"{run.tasks_total}/{run.tasks_done}"
                        )
                while True:
                    batch = await store.read_events(after_id=last_id, limit=500)
                    if not batch:
                        break
                    ids = [event.id for event in batch]
                    if ids != list(range(last_id + 1, last_id + 1 + len(ids))):
                        problems.append(f"after event {last_id} came {ids[:5]}...")
                    last_id = ids[-1]
                    seen += len(ids)
                reads_while_writing += not stopping
                if saw is not None and seen and not stopping:
                    saw.set()
                if stopping:
                    break
        finally:
            await store.close()
        return {
            "seen": seen,
            "last_id": last_id,
            "reads_while_writing": reads_while_writing,
            "problems": problems[:20],
        }

    _report(out, "reader", main)


def claim_worker(
    location: str, run_ids: list[str], barrier: Waitable, out: Putter, owner_gone: bool = False
) -> None:
    """For each run, read it, wait for every racer at the barrier, then try to claim it at the
    epoch read. Reports, tagged with this process's pid, a ``("won" | "busy", run_id, epoch)``
    per run.

    With ``owner_gone`` every racer says the holder is gone (as ``resume`` does for a crashed
    worker) and all racers share one host name, so the lease check lets every racer through
    and only the claim's compare-and-set on the epoch decides: a claim without it lets every
    racer win."""

    async def main() -> list[tuple[str, str, int]]:
        store = await open_store(location)
        host = "racer-host" if owner_gone else f"host-{os.getpid()}"
        owner = Owner(host=host, pid=os.getpid(), pid_started=0.0)
        outcomes: list[tuple[str, str, int]] = []
        try:
            for run_id in run_ids:
                expected = (await store.get_run(run_id)).epoch
                barrier.wait(BARRIER_TIMEOUT)
                try:
                    run = await store.claim_run(
                        run_id,
                        owner,
                        expected_epoch=expected,
                        lease_seconds=600,
                        owner_gone=owner_gone,
                    )
                except RunBusyError:
                    outcomes.append(("busy", run_id, expected))
                else:
                    outcomes.append(("won", run_id, run.epoch))
        finally:
            await store.close()
        return outcomes

    _report(out, str(os.getpid()), main)


def open_worker(locations: list[str], name: str, barrier: Waitable, out: Putter) -> None:
    """For each fresh location, wait for every racer, then open it (creating and migrating
    it) and create the run ``name``. One report per location, tagged with the location."""

    async def open_one(location: str) -> str:
        store = await open_store(location)
        try:
            await store.create_run(new_run(name))
        finally:
            await store.close()
        return name

    for location in locations:
        barrier.wait(BARRIER_TIMEOUT)
        _report(out, location, lambda location=location: open_one(location))
