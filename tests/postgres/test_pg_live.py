"""Live updates (LISTEN/NOTIFY, the fallback poll) and losing the server: dropped sessions,
a lost COMMIT answer, and an outage with a recovery (through a TCP relay that this test
cuts and restores: the real server keeps running)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from pgkit import Proxy, new_run, terminate_backends, wait_for, with_schema

from nanoagent_core.actions import new_run as new_demo_run
from nanoagent_core.errors import DatabaseError
from nanoagent_core.models import RunStatus
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.postgres import listener as pg_listener
from nanoagent_core.postgres import opening as pg_opening
from nanoagent_core.protocols import NewEvent
from nanoagent_core.worker import resume_run

ME = f"nanoagent/{os.getpid()}"


@pytest.fixture
async def watcher(location: str) -> AsyncIterator[PostgresStore]:
    """A second store on the schema, as a dashboard elsewhere would open it."""
    opened = await PostgresStore.open(location, retry_seconds=5.0)
    try:
        yield opened
    finally:
        await opened.close()


async def changed_from(store: PostgresStore, token: int) -> int | None:
    now = await store.change_token()
    return now if now != token else None


async def test_change_token_follows_commits_pushed_by_the_server(
    store: PostgresStore, watcher: PostgresStore
) -> None:
    token = await watcher.change_token()
    assert (watcher.listening, watcher.connected) == (True, True)
    await asyncio.sleep(0.2)
    assert await watcher.change_token() == token  # nothing committed: nothing changes
    latencies: list[float] = []
    for i in range(20):
        token = await watcher.change_token()
        began = time.perf_counter()
        await store.create_run(new_run(f"r{i}"))
        token = await wait_for(partial(changed_from, watcher, token), every=0.001, timeout=30)
        latencies.append(time.perf_counter() - began)
    latencies.sort()
    # every commit moved the token; how fast the push is (about a millisecond on a quiet
    # machine) is measured by bench/live.py, not bounded here
    print(f"\nchange token p95 {latencies[int(0.95 * len(latencies))] * 1000:.1f} ms")


async def test_listener_reconnects_after_its_session_is_dropped(
    store: PostgresStore, watcher: PostgresStore, pg_url: str
) -> None:
    await watcher.change_token()
    assert terminate_backends(pg_url, f"{ME}/listen") == 1

    async def gone() -> bool:
        await asyncio.sleep(0)
        return not watcher.listening

    await wait_for(gone, what="the listener to notice")
    token = await watcher.change_token()  # polled meanwhile: still works
    await store.create_run(new_run("while-away"))
    await wait_for(lambda: changed_from(watcher, token), what="a change while reconnecting")

    async def back() -> bool:
        await asyncio.sleep(0.01)
        return watcher.listening

    await wait_for(back, what="the listener to reconnect", timeout=5)
    token = await watcher.change_token()
    await store.create_run(new_run("after"))
    await wait_for(lambda: changed_from(watcher, token), what="a pushed change", timeout=2)


async def test_fallback_poll_when_the_listener_cannot_connect(
    store: PostgresStore, watcher: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never(self: Any) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(pg_listener.Listener, "_run", never)
    token = await watcher.change_token()
    assert (watcher.listening, watcher.connected) == (False, True)
    assert await watcher.change_token() == token
    await store.create_run(new_run("polled"))
    assert await watcher.change_token() != token


async def test_operations_go_on_after_the_sessions_are_terminated(
    store: PostgresStore, pg_url: str
) -> None:
    await store.create_run(new_run("before"))
    for i in range(3):
        assert terminate_backends(pg_url, ME) >= 1
        await store.create_run(new_run(f"after-{i}"))  # a write on a dead session: retried
        assert terminate_backends(pg_url, ME) >= 1
        assert len(await store.list_runs()) == 2 + i  # a read on a dead session: retried
    assert [e.id for e in await store.read_events()] == [1, 2, 3, 4]


async def test_open_tries_again_when_its_session_is_terminated_midway(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the session while open() creates the schema (a worker starting as the
    database restarts, or an administrator's pg_terminate_backend): open() connects again and
    finishes, instead of the worker dying with "terminating connection"."""
    real_prepare = pg_opening._prepare  # pyright: ignore[reportPrivateUsage]
    calls: list[str] = []

    async def prepare(conn: psycopg.AsyncConnection[Any], *args: Any) -> None:
        calls.append("prepare")
        if len(calls) == 1:  # the first session: the server terminates it
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        await real_prepare(conn, *args)

    monkeypatch.setattr(pg_opening, "_prepare", prepare)
    opened = await PostgresStore.open(with_schema(pg_url, schema), retry_seconds=5.0)
    try:
        assert calls == ["prepare", "prepare"]
        await opened.create_run(new_run("after"))
        assert [r.run_id for r in await opened.list_runs()] == ["after"]
    finally:
        await opened.close()


@pytest.mark.parametrize("landed", [True, False], ids=["commit-landed", "commit-lost"])
async def test_a_lost_commit_answer_is_settled_by_the_server(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch, landed: bool
) -> None:
    """The connection dies while COMMIT is in flight. The store asks the server what became
    of the transaction (pg_xact_status): if it committed, that is the answer (not done
    twice); if not, the transaction runs again (done once)."""
    await store.create_run(new_run("r"))
    real_execute = psycopg.AsyncClientCursor.execute
    armed = [True]

    async def execute(
        self: psycopg.AsyncClientCursor[Any], query: Any, *args: Any, **kw: Any
    ) -> Any:
        if str(query).endswith("COMMIT") and armed[0]:  # the write's last message
            armed[0] = False
            if landed:
                await real_execute(self, query, *args, **kw)
            await self.connection.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await real_execute(self, query, *args, **kw)

    monkeypatch.setattr(psycopg.AsyncClientCursor, "execute", execute)
    event = await store.append_event("r", NewEvent(kind="note", data={"once": True}))
    assert not armed[0]
    notes = [e for e in await store.read_events() if e.kind == "note"]
    assert [(e.id, e.data) for e in notes] == [(event.id, {"once": True})]
    assert event.id == 2


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[Proxy]:
    parts = urlsplit(pg_url)
    if parts.hostname is None:
        pytest.skip("the server URL names no TCP host")
    relay = Proxy(parts.hostname, parts.port or 5432)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


def through(pg_url: str, proxy: Proxy, schema: str) -> str:
    parts = urlsplit(pg_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    relayed = parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host)
    return with_schema(relayed.geturl(), schema)


async def test_outage_is_one_line_then_the_store_recovers_by_itself(
    pg_url: str, schema: str, proxy: Proxy
) -> None:
    """What a dashboard sees: while the server is away, DatabaseError (one line) and
    ``connected`` False; once it is back, everything works again without reopening."""
    store = await PostgresStore.open(through(pg_url, proxy, schema), retry_seconds=0.5)
    try:
        await store.create_run(new_run("r"))
        await store.change_token()
        assert store.listening
        await proxy.stop()
        with pytest.raises(DatabaseError) as raised:
            await store.get_run("r")
        assert "\n" not in str(raised.value)
        with pytest.raises(DatabaseError, match="disconnected"):
            await store.change_token()
        assert (store.connected, store.listening) == (False, False)
        await proxy.start()

        async def back() -> bool:
            try:
                await store.change_token()
            except DatabaseError:
                return False
            return store.listening

        await wait_for(back, what="the store to reconnect", timeout=10, every=0.05)
        assert store.connected
        assert (await store.get_run("r")).run_id == "r"
        token = await store.change_token()
        await store.append_event("r", NewEvent(kind="note"))
        await wait_for(lambda: changed_from(store, token), what="a pushed change", timeout=2)
    finally:
        await store.close()


async def test_worker_rides_out_a_server_outage(pg_url: str, schema: str, proxy: Proxy) -> None:
    """The server is unreachable for longer than the lease in the middle of a run: the
    worker's writes wait and retry, nobody else took the run, so it goes on and completes
    with nothing lost or doubled."""
    store = await PostgresStore.open(through(pg_url, proxy, schema), retry_seconds=10.0)
    try:
        run = new_demo_run(
            "outage", "Ride out an outage", options={"tasks": "6", "delay": "0.1"}, heartbeat=0.2
        )
        await store.create_run(run)
        worker = asyncio.ensure_future(
            resume_run(store, "outage", heartbeat=0.2, handle_signals=False)
        )

        async def midway() -> bool:
            return (await store.get_run("outage")).tasks_done >= 2

        await wait_for(midway, what="the run to get going")
        await proxy.stop()
        await asyncio.sleep(1.0)  # the 0.6 s lease runs out meanwhile
        await proxy.start()
        final = await asyncio.wait_for(worker, 20)
        assert final.status is RunStatus.COMPLETED
        events = await store.read_events(run_id="outage", limit=10_000)
        done = [e.data["task_id"] for e in events if e.kind == "task_done"]
        assert len(done) == len(set(done)) == final.tasks_done
        assert [e.id for e in await store.read_events(limit=10_000)] == list(
            range(1, len(await store.read_events(limit=10_000)) + 1)
        )
    finally:
        await store.close()
