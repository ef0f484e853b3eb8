"""Contract (SQLite and PostgreSQL): the Viewer Protocol reads the conversation journal, so
the dashboard's conversation view and per-task usage need no concrete store: a viewer opened
with ``open_viewer`` reads back exactly the attempts a worker committed, in journal order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pgkit import drop_schema, new_schema_name, usable_server, with_schema
from storekit import FakeClock, new_run

from nanoagent_core.models import Attempt, Owner, Phase, Task, TaskStatus
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.protocols import Step, Store, Viewer
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.stores import open_viewer

OWNER = Owner(host="test-host", pid=4242, pid_started=17.0)


@pytest.fixture(params=["sqlite", "postgres"])
async def writer(
    request: pytest.FixtureRequest, clock: FakeClock, db_path: Path
) -> AsyncIterator[tuple[Store, str]]:
    if request.param == "sqlite":
        opened = await SQLiteStore.open(db_path, clock=clock)
        try:
            yield opened, str(db_path)
        finally:
            await opened.close()
        return
    url = usable_server()
    location = with_schema(url, new_schema_name())
    pg = await PostgresStore.open(location, clock=clock)
    try:
        yield pg, location
    finally:
        await pg.close()
        drop_schema(url, pg.schema)


def _attempt(task_id: str, number: int, text: str, cost: float | None) -> Attempt:
    return Attempt(
        task_id=task_id, attempt=number, outcome="done", messages=text, model="m",
        requests=1, tokens_in=10 * number, tokens_out=3, cost_usd=cost, seconds=0.5,
    )  # fmt: skip


async def test_a_viewer_reads_the_journal_a_worker_committed(writer: tuple[Store, str]) -> None:
    store, location = writer
    await store.create_run(new_run("run-1"))
    run = await store.claim_run("run-1", OWNER, expected_epoch=0, lease_seconds=30)
    journal = (
        _attempt("a", 1, '[{"kind": "request", "parts": []}]', None),
        _attempt("a", 2, '[{"kind": "response", "parts": [{"part_kind": "text"}]}]', 0.001),
        _attempt("b", 1, "[]", 0.002),
    )
    tasks = (
        Task(id="a", description="first", status=TaskStatus.DONE, attempts=2, seq=0),
        Task(id="b", description="second", status=TaskStatus.DONE, attempts=1, seq=1),
    )
    await store.commit_step(
        "run-1",
        Step(phase=Phase.EXECUTING, iteration=1, tasks=tasks, attempts=journal),
        epoch=run.epoch,
    )
    viewer: Viewer = await open_viewer(location)
    try:
        assert tuple(await viewer.get_attempts("run-1")) == journal
        assert await viewer.get_attempts("nope") == []
    finally:
        await viewer.close()
