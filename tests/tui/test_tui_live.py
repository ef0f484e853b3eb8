"""The live data behind the dashboard, without Textual: what a poll reads and what it costs.

A counting proxy sits between LiveData and its read-only store, so the tests see exactly
which store calls each poll makes.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from tuikit import EVERY_STATUS, NOW, FakeClock, Seed, seed_database, seed_run

from nanoagent_core.models import EventKind, RunStatus
from nanoagent_core.protocols import NewEvent
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.live import Filter, Health, LiveData, SortMode, ViewerStore, open_viewer


class Counting:
    """Forwards to a store and counts the calls (and the run ids given to get_runs)."""

    def __init__(self, store: ViewerStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()
        self.fetched: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        attribute: Any = getattr(self.store, name)
        if not callable(attribute):
            return attribute
        method = cast(Callable[..., Awaitable[Any]], attribute)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "get_runs":
                self.fetched.append(list(args[0]))
            return await method(*args, **kwargs)

        return call

    def reset(self) -> None:
        self.calls.clear()
        self.fetched.clear()


@pytest.fixture
async def seeded(here: Path) -> Path:
    await seed_database(here / "runs.db")
    return here / "runs.db"


@pytest.fixture
async def writer(seeded: Path) -> AsyncIterator[SQLiteStore]:
    """Another connection, writing as a worker or the command line would."""
    store = await SQLiteStore.open(seeded, clock=FakeClock(NOW))
    try:
        yield store
    finally:
        await store.close()


async def _live(path: Path, **kwargs: Any) -> tuple[LiveData, list[Counting]]:
    proxies: list[Counting] = []

    async def opener(location: str) -> SQLiteStore:
        proxy = Counting(await open_viewer(location))
        proxies.append(proxy)
        return cast(SQLiteStore, proxy)

    return LiveData(str(path), opener=opener, **kwargs), proxies


async def test_first_poll_loads_every_status(seeded: Path) -> None:
    live, _ = await _live(seeded)
    try:
        update = await live.poll(NOW)
        assert update is not None
        assert update.reloaded
        assert live.health is Health.LIVE
        assert set(live.runs) == {seed.run_id for seed in EVERY_STATUS}
        words = {run.run_id: word for run, word in live.visible(NOW, SortMode.ACTIVITY)}
        assert words == {
            "run-b7f3c9": "running",
            "stop-44aa10": "aborting",
            "crash-e02d5b": "crashed",
            "fail-3be1c7": "failed",
            "int-9a44f0": "interrupted",
            "abt-51d0e9": "aborted",
            "cmp-7c1e2a": "completed",
        }
        # newest activity first
        assert live.visible(NOW, SortMode.ACTIVITY)[0][0].run_id == "run-b7f3c9"
        assert live.visible(NOW, SortMode.STATUS)[0][0].run_id == "crash-e02d5b"
        assert live.shown_counts(NOW) == {
            "crashed": 1,
            "aborting": 1,
            "running": 1,
            "failed": 1,
            "interrupted": 1,
            "aborted": 1,
            "completed": 1,
        }
    finally:
        await live.close()


async def test_idle_poll_reads_nothing_but_data_version(seeded: Path) -> None:
    live, proxies = await _live(seeded)
    try:
        await live.poll(NOW)
        proxies[0].reset()
        for _ in range(5):
            assert await live.poll(NOW) is None
        assert proxies[0].calls == Counter({"change_token": 5})
        assert live.stats.idle == 5
    finally:
        await live.close()


async def test_one_change_reads_new_events_and_only_the_run_they_touch(
    here: Path,
) -> None:
    """With 300 runs kept, one step of one run costs: the token, the new events, that run."""
    path = here / "many.db"
    clock = FakeClock()
    store = await SQLiteStore.open(path, clock=clock)
    try:
        for n in range(300):
            await seed_run(
                store,
                clock,
                Seed(f"r{n:03d}", f"goal {n}", tasks=2, done=2, status=RunStatus.COMPLETED),
            )
        live, proxies = await _live(path)
        try:
            await live.poll(clock())
            proxies[0].reset()
            await store.append_event("r123", NewEvent(kind=EventKind.NOTE, data={"text": "hi"}))
            update = await live.poll(clock())
            assert update is not None
            assert [event.run_id for event in update.events] == ["r123"]
            assert proxies[0].fetched == [["r123"]]
            assert proxies[0].calls == Counter({"change_token": 1, "read_events": 1, "get_runs": 1})
            assert live.stats.fetched_runs == 1
        finally:
            await live.close()
    finally:
        await store.close()


async def test_a_status_change_recounts_and_the_new_status_shows(
    seeded: Path, writer: SQLiteStore
) -> None:
    live, proxies = await _live(seeded)
    try:
        await live.poll(NOW)
        proxies[0].reset()
        run = await writer.get_run("int-9a44f0")
        await writer.abort_unowned("int-9a44f0", expected_epoch=run.epoch, reason="test")
        update = await live.poll(NOW)
        assert update is not None
        assert [r.run_id for r in update.runs] == ["int-9a44f0"]
        assert proxies[0].calls["count_runs"] == 1
        assert live.runs["int-9a44f0"].status is RunStatus.ABORTED
        assert live.shown_counts(NOW).get("interrupted") is None
        assert live.shown_counts(NOW)["aborted"] == 2
    finally:
        await live.close()


async def test_a_heartbeat_near_the_lease_end_refreshes_the_lease(
    seeded: Path, writer: SQLiteStore
) -> None:
    """A heartbeat writes no event; a run whose cached lease is about to end is read again
    on the next change, so a live worker is never shown crashed for a stale lease."""
    live, proxies = await _live(seeded)
    try:
        await live.poll(NOW)
        run = live.runs["run-b7f3c9"]
        assert run.lease_expires_at is not None
        near_end = run.lease_expires_at - timedelta(seconds=1)
        proxies[0].reset()
        await writer.renew_lease("run-b7f3c9", epoch=run.epoch, lease_seconds=86_400 * 2)
        await live.poll(near_end)
        assert proxies[0].fetched == [["run-b7f3c9", "stop-44aa10"]]
        renewed = live.runs["run-b7f3c9"].lease_expires_at
        assert renewed is not None
        assert renewed > run.lease_expires_at
    finally:
        await live.close()


async def test_filter_goes_through_sql(seeded: Path) -> None:
    live, proxies = await _live(seeded)
    try:
        await live.poll(NOW)
        live.set_filter(Filter(text="DATA"))
        update = await live.poll(NOW)
        assert update is not None
        assert update.reloaded
        assert [run.run_id for run, _ in live.visible(NOW, SortMode.ACTIVITY)] == ["crash-e02d5b"]
        live.set_filter(Filter(status="crashed"))
        await live.poll(NOW)
        assert [run.run_id for run, _ in live.visible(NOW, SortMode.ACTIVITY)] == ["crash-e02d5b"]
        assert proxies[0].calls["list_runs"] == 6  # (window + running) x 3 loads
    finally:
        await live.close()


async def test_missing_database_is_empty_then_picked_up(here: Path) -> None:
    ticks = [0.0]
    live = LiveData(str(here / "later.db"), monotonic=lambda: ticks[0])
    try:
        update = await live.poll(NOW)
        assert update is not None
        assert live.health is Health.MISSING
        assert not (here / "later.db").exists()  # looking never creates it
        await seed_database(here / "later.db", EVERY_STATUS[:1], fresh=True)
        assert await live.poll(NOW) is None  # not retried before a second has passed
        ticks[0] += 1.5
        update = await live.poll(NOW)
        assert update is not None
        assert update.reloaded
        assert live.health is Health.LIVE
        assert list(live.runs) == ["cmp-7c1e2a"]
    finally:
        await live.close()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("just some notes\n" * 100, "not a nanoagent database", id="text-file"),
        pytest.param("newer", "newer than this nanoagent understands", id="newer-schema"),
        pytest.param("corrupt", "damaged", id="corrupt-file"),
    ],
)
async def test_unreadable_database_is_broken_with_its_message(
    here: Path, content: str, expected: str
) -> None:
    path = here / "bad.db"
    if content == "newer":
        await seed_database(path, EVERY_STATUS[:1])
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 99")
    elif content == "corrupt":
        await seed_database(path, EVERY_STATUS)
        with sqlite3.connect(path) as conn:  # where the runs table starts (schema 4 rebuilt it)
            root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        data = bytearray(path.read_bytes())
        start = (root[0] - 1) * size
        data[start : start + 2 * size] = b"\xff" * (2 * size)  # overwrite the runs table's pages
        path.write_bytes(bytes(data))
    else:
        path.write_text(content)
    before = path.read_bytes()
    live = LiveData(str(path))
    try:
        for _ in range(3):
            await live.poll(NOW)
            if live.health is Health.BROKEN:
                break
        assert live.health is Health.BROKEN
        assert expected in live.message
        assert path.read_bytes() == before  # nothing written
    finally:
        await live.close()


async def test_locked_database_waits_then_recovers(seeded: Path) -> None:
    """A rollback-journal database held in an exclusive transaction blocks readers: polls
    fail fast (short busy timeout), the health says waiting, and it recovers."""
    with sqlite3.connect(seeded, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    ticks = [0.0]
    live = LiveData(str(seeded), monotonic=lambda: ticks[0])
    locker = sqlite3.connect(seeded, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        await live.poll(NOW)
        assert live.health is Health.WAITING
        assert "locked" in live.message
        ticks[0] += 5
        assert live.waited() == 5
        locker.execute("ROLLBACK")
        ticks[0] += 1.5
        await live.poll(NOW)
        assert live.health is Health.LIVE
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("UPDATE runs SET goal = goal")
        live.set_filter(Filter(text="x"))  # forces reads
        await live.poll(NOW)
        assert live.health is Health.WAITING
        locker.execute("ROLLBACK")
        await live.poll(NOW)
        assert live.health is Health.LIVE
    finally:
        locker.close()
        await live.close()
