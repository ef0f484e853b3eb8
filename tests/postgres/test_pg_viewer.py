"""The dashboard over PostgreSQL through the Viewer Protocol: the store says it pushes
changes (LISTEN/NOTIFY), so the dashboard polls often once it is open; a load starts reading
events after the store's last event id."""

from __future__ import annotations

from nanoagent_core.models import RunState, utc_now
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.protocols import NewEvent
from nanoagent_core.stores import open_viewer
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.live import Health, LiveData


async def test_the_dashboard_polls_often_once_a_pushing_store_is_open(
    location: str, store: PostgresStore
) -> None:
    await store.create_run(RunState(run_id="pg-run", goal="watch me", max_iterations=5))
    live = LiveData(location)
    app = DashboardApp(location, live=live)
    try:
        assert app.poll_interval == 0.1  # nothing open yet: no promise of pushed changes
        await live.poll(utc_now())
        assert live.health is Health.LIVE, live.message
        assert live.pushes_changes
        assert app.poll_interval == 0.02
    finally:
        await live.close()


async def test_a_viewer_reads_the_last_event_id_of_the_database(
    location: str, store: PostgresStore
) -> None:
    await store.create_run(RunState(run_id="pg-run", goal="watch me", max_iterations=5))
    for n in range(5):
        await store.append_event("pg-run", NewEvent(kind="note", data={"n": n}))
    viewer = await open_viewer(
        location, busy_timeout=30.0
    )  # not a fail-fast test: a loaded machine
    try:
        assert viewer.pushes_changes
        assert await viewer.last_event_id() == 6
        assert await viewer.read_events(after_id=6) == []
    finally:
        await viewer.close()
