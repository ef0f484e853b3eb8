"""Queued runs claimed by racing processes (SQLite file, PostgreSQL schema), one by one and in
batches: every queued run has exactly one winner, and each process takes runs oldest first."""

from __future__ import annotations

import asyncio
import queue
from collections import Counter
from collections.abc import Iterator
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest
import queuekit
from pgkit import drop_schema, new_schema_name, usable_server, with_schema
from storekit import FakeClock, new_run

from nanoagent_core.models import RunStatus
from nanoagent_core.stores import open_store

RACERS = 6
RUNS = 60
REPORT_TIMEOUT = 120.0


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "queue.db")
        return
    url = usable_server()
    schema = new_schema_name()
    try:
        yield with_schema(url, schema)
    finally:
        drop_schema(url, schema)


async def enqueue(location: str, run_ids: list[str]) -> None:
    """Queued runs created one per (fake) second, so their age order is the list's order."""
    from nanoagent_core.postgres import PostgresStore
    from nanoagent_core.sqlite import SQLiteStore

    clock = FakeClock()
    if location.startswith("postgresql://"):
        store: Any = await PostgresStore.open(location, clock=clock)
    else:
        store = await SQLiteStore.open(location, clock=clock)
    try:
        for run_id in run_ids:
            await store.create_run(new_run(run_id, status=RunStatus.QUEUED))
            clock.advance(1.0)
    finally:
        await store.close()


def collect(results: Any, count: int, procs: list[Any]) -> list[tuple[str, int, Any]]:
    reports: list[tuple[str, int, Any]] = []
    for _ in range(count):
        try:
            reports.append(results.get(timeout=REPORT_TIMEOUT))
        except queue.Empty:
            alive = [p.pid for p in procs if p.is_alive()]
            raise AssertionError(f"a claimer did not report; alive: {alive}") from None
    return reports


def test_racing_processes_claim_each_queued_run_exactly_once_oldest_first(
    location: str, forking: ForkServerContext
) -> None:
    run_ids = [f"q{n:03d}" for n in range(RUNS)]
    asyncio.run(enqueue(location, run_ids))
    results = forking.Queue()
    barrier = forking.Barrier(RACERS)
    procs = [
        forking.Process(
            target=queuekit.queue_claimer,
            args=(location, f"host-{n % 2}", 1 + n % 3, barrier, results),
        )
        for n in range(RACERS)
    ]
    for proc in procs:
        proc.start()
    try:
        reports = collect(results, RACERS, procs)
    finally:
        for proc in procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert [detail for kind, _, detail in reports if kind != "ok"] == []
    claims = [(pid, run_id, epoch) for _, pid, got in reports for run_id, epoch in got]
    # exactly one winner per run, and every queued run was claimed
    assert Counter(run_id for _, run_id, _ in claims) == Counter(run_ids)
    assert {epoch for _, _, epoch in claims} == {1}
    # each claimer took its runs oldest first (a later claim never names an older run)
    for _, _, got in reports:
        order = [run_id for run_id, _ in got]
        assert order == sorted(order)

    async def check() -> None:
        store = await open_store(location, create=False)
        try:
            by_pid = {run_id: pid for pid, run_id, _ in claims}
            for run_id in run_ids:
                run = await store.get_run(run_id)
                assert run.status is RunStatus.RUNNING
                assert run.owner is not None
                assert run.owner.pid == by_pid[run_id]
                kinds = [e.kind for e in await store.read_events(run_id=run_id)]
                assert kinds == ["run_created", "run_claimed"]
            assert await store.count_runs() == {RunStatus.RUNNING: RUNS}
        finally:
            await store.close()

    asyncio.run(check())
