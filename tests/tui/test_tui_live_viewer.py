"""The dashboard's live data sees its store through the Viewer Protocol (issue 10 item 3):
a load asks the store for the last event id (one call, where it used to binary-search
``read_events``), and the poll interval follows whether the open store pushes changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from tuikit import NOW, FakeClock, seed_database

from nanoagent_core.models import EventKind
from nanoagent_core.protocols import NewEvent, Viewer
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.stores import open_viewer
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.live import Health, LiveData


class Counting:
    """Forwards to a Viewer and counts the calls made through it."""

    def __init__(self, store: Viewer) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute: Any = getattr(self.store, name)
        if not callable(attribute):
            return attribute

        method = cast(Callable[..., Awaitable[Any]], attribute)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return call


async def test_a_load_asks_the_store_for_the_last_event_id_once(here: Path) -> None:
    path = here / "runs.db"
    await seed_database(path)
    proxies: list[Counting] = []

    async def opener(location: str) -> Any:
        proxies.append(Counting(await open_viewer(location)))
        return proxies[-1]

    live = LiveData(str(path), opener=opener)
    writer = await SQLiteStore.open(path, clock=FakeClock(NOW))
    try:
        update = await live.poll(NOW)
        assert update is not None
        assert update.reloaded
        (proxy,) = proxies
        assert proxy.calls["last_event_id"] == 1
        assert proxy.calls["read_events"] == 0  # no probing of the event log
        last = await writer.last_event_id()
        note = await writer.append_event(
            "run-b7f3c9", NewEvent(kind=EventKind.NOTE, data={"text": "after the load"})
        )
        assert note.id == last + 1
        update = await live.poll(NOW)
        assert update is not None
        assert [event.id for event in update.events] == [note.id]  # exactly what came after
    finally:
        await live.close()
        await writer.close()


async def test_the_poll_interval_follows_the_open_store(here: Path) -> None:
    path = here / "runs.db"
    await seed_database(path)
    live = LiveData(str(path))
    app = DashboardApp(str(path), live=live)
    try:
        assert not live.pushes_changes  # nothing open yet
        assert app.poll_interval == 0.1
        await live.poll(NOW)
        assert live.health is Health.LIVE, live.message
        assert not live.pushes_changes  # SQLite's idle poll is a query: PRAGMA data_version
        assert app.poll_interval == 0.1
        assert DashboardApp(str(path), live=live, poll_interval=0.5).poll_interval == 0.5
    finally:
        await live.close()
