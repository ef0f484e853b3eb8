"""Driving the dashboard (``nanoagent_tui.app.DashboardApp``) headlessly with ``App.run_test``.

What is timed, and how, using only what the app shows to its tests:

* a probe wraps ``app.live.poll`` (the app's one poll loop calls it, then hands the update
  to the screens in the same turn of the event loop): each poll's duration, and, through a
  ``call_soon`` scheduled as the poll returns, the moment the screens have taken the update
  in (the repaint follows in the same turn);
* time to first full screen: from creating the app to the runs table holding every run of
  the first load, painted (``pilot.pause()``);
* what is on screen is read from the runs table (a ``DataTable``, rows keyed by run id).

Until the dashboard exists, ``available()`` is False and the tables show its figures as
pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Config, Figure, Stat

__all__ = [
    "SCALE_FIGURES",
    "SIZE",
    "TEARDOWN_ERRORS",
    "PollProbe",
    "View",
    "available",
    "first_screen_seconds",
    "scale_costs",
    "teardown_note",
    "watching",
]

SIZE = (160, 48)  #: the terminal the headless dashboard draws on

SCALE_FIGURES = (
    Figure("dash_first_screen", "dashboard: time to first full screen", "ms"),
    Figure("dash_idle", "dashboard: one idle poll", "us", flat=True),
    Figure("dash_refresh", "dashboard: refresh after 1 change (poll + screen update)", "ms",
           flat=True),
    Figure("dash_tick", "dashboard: one tick (runs view redrawn, statuses and ages)", "ms"),
)  # fmt: skip


def available() -> bool:
    """True when the dashboard has its app class. An import error is raised, not taken for
    "no dashboard": that would turn every dashboard figure (and its smoke test) vacuous."""
    return hasattr(importlib.import_module("nanoagent_tui.app"), "DashboardApp")


def _app_class() -> Any:
    return importlib.import_module("nanoagent_tui.app").DashboardApp


@dataclass
class PollRecord:
    began: float  #: perf_counter
    ended: float
    shown: float | None = None  #: perf_counter once the screens have taken the update in
    shown_wall: float | None = None  #: time.time() at that moment
    events: tuple[tuple[int, str, float], ...] = ()  #: (id, run id, commit time) per event
    changed: bool = False


@dataclass
class PollProbe:
    """Wraps ``live.poll`` of an app to time the app's own polls."""

    records: list[PollRecord] = field(default_factory=list[PollRecord])
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    def install(self, app: Any) -> None:
        live = app.live
        original: Callable[..., Awaitable[Any]] = live.poll

        async def poll(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            update = await original(*args, **kwargs)
            record = PollRecord(began, time.perf_counter(), changed=update is not None)
            if update is not None:
                record.events = tuple(
                    (e.id, e.run_id, e.ts.timestamp()) for e in getattr(update, "events", ())
                )
            self.records.append(record)

            def shown() -> None:
                record.shown = time.perf_counter()
                record.shown_wall = time.time()
                self.seen.set()

            asyncio.get_running_loop().call_soon(shown)
            return update

        live.poll = poll

    async def next_poll(self, timeout: float = 60.0) -> PollRecord:
        """Wait for the next poll to be over and shown (``timeout`` bounds a hang only)."""
        count = len(self.records)
        deadline = time.perf_counter() + timeout
        while True:
            self.seen.clear()
            if len(self.records) > count and self.records[count].shown is not None:
                return self.records[count]
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("the dashboard did not poll")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.seen.wait(), left)

    async def caught_up_after(self, instant: float, timeout: float = 60.0) -> PollRecord:
        """Wait for a poll that began after ``instant`` (perf_counter) and found no new event
        to be over and shown: every event committed before ``instant`` has then been shown
        (a poll takes at most a page of events; the rest wait for the next polls).
        ``timeout`` bounds a hang only."""
        deadline = time.perf_counter() + timeout
        while True:
            self.seen.clear()
            for record in self.records:
                if record.began >= instant and record.shown is not None and not record.events:
                    return record
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("the dashboard did not poll")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.seen.wait(), left)


@dataclass
class View:
    """A headless dashboard on one database, with its probe."""

    app: Any
    pilot: Any
    probe: PollProbe
    opened: float  #: seconds from creating the app to the first full screen

    def table(self) -> Any:
        from textual.widgets import DataTable

        return self.app.screen.query_one(DataTable)

    def row_text(self, run_id: str) -> str | None:
        """The text of ``run_id``'s row on the runs screen, or None if it has no row."""
        try:
            cells = self.table().get_row(run_id)
        except Exception:
            return None
        return " ".join(str(cell) for cell in cells)

    async def wait_row(self, run_id: str, word: str, timeout: float) -> float:
        """perf_counter() once the row of ``run_id`` shows ``word``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            text = self.row_text(run_id)
            if text is not None and word in text:
                return time.perf_counter()
            await asyncio.sleep(0.002)
        raise TimeoutError(f"the dashboard never showed {run_id} as {word}")


def _full(app: Any) -> bool:
    """The first load is in and every kept run has its row."""
    live = app.live
    if live.stats.loads < 1:
        return False
    try:
        from textual.widgets import DataTable

        table = app.screen.query_one(DataTable)
    except Exception:
        return False
    wanted = len(live.runs)
    return wanted > 0 and table.row_count >= wanted


#: Errors the dashboard raised while closing, after what was timed (reported in the notes).
TEARDOWN_ERRORS: list[str] = []


@contextlib.asynccontextmanager
async def watching(
    path: Path | str, timeout: float = 60.0, **options: float
) -> AsyncIterator[View]:
    """Open the dashboard headlessly on ``path`` (a SQLite file or a PostgreSQL URL;
    ``options`` go to the app, e.g.
    ``poll_interval``); yields once its first full screen is up. An error the app raises
    while it closes, once the caller is done, is kept in TEARDOWN_ERRORS, not raised."""
    began = time.perf_counter()
    app = _app_class()(str(path), animate=False, **options)
    probe = PollProbe()
    probe.install(app)
    done = False
    try:
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.perf_counter() + timeout
            while not _full(app):
                if time.perf_counter() > deadline:
                    raise TimeoutError("the dashboard never showed its first full screen")
                await asyncio.sleep(0.001)
            await pilot.pause()
            opened = time.perf_counter() - began
            yield View(app, pilot, probe, opened)
            done = True
    except Exception as exc:
        if not done:
            raise
        TEARDOWN_ERRORS.append(f"{type(exc).__name__}: {exc}")


def teardown_note() -> list[str]:
    """A note for the tables if the dashboard failed while closing."""
    if not TEARDOWN_ERRORS:
        return []
    first = TEARDOWN_ERRORS[0]
    return [
        f"the dashboard raised while closing {len(TEARDOWN_ERRORS)} time(s), after the"
        f" measurement (a dashboard bug, not counted): {first}"
    ]


async def first_screen_seconds(path: Path) -> float:
    async with watching(path) as view:
        return view.opened


async def _steady_costs(path: Path, runs_hint: str, samples: int) -> dict[str, Stat]:
    """One dashboard opened on ``path``: its time to first full screen, then idle polls,
    refreshes after one change, and ticks."""
    from nanoagent_core.models import EventKind
    from nanoagent_core.protocols import NewEvent
    from nanoagent_core.sqlite import SQLiteStore

    writer = await SQLiteStore.open(path)
    try:
        async with watching(path) as view:
            app, probe = view.app, view.probe
            for _ in range(3):  # settle
                app.request_poll()
                await probe.next_poll()
            idle: list[float] = []
            while len(idle) < samples:
                app.request_poll()
                record = await probe.next_poll()
                if not record.changed:
                    idle.append((record.ended - record.began) * 1e6)
            refresh: list[float] = []
            for n in range(samples):
                await writer.append_event(runs_hint, NewEvent(kind=EventKind.NOTE, data={"n": n}))
                app.request_poll()
                record = await probe.next_poll()
                while not record.events:  # a poll that started before the write
                    app.request_poll()
                    record = await probe.next_poll()
                assert record.shown is not None
                refresh.append((record.shown - record.began) * 1e3)
            ticks: list[float] = []
            screen = app.screen
            redraw = getattr(screen, "refresh_view", None) or getattr(screen, "on_tick", None)
            if redraw is not None:
                for _ in range(max(2, samples // 5)):
                    began = time.perf_counter()
                    redraw()
                    await view.pilot.pause()
                    ticks.append((time.perf_counter() - began) * 1e3)
            opened = view.opened
    finally:
        await writer.close()
    out = {
        "dash_first_screen": Stat.of([opened * 1e3]),
        "dash_idle": Stat.of(idle),
        "dash_refresh": Stat.of(refresh),
    }
    if ticks:
        out["dash_tick"] = Stat.of(ticks)
    return out


def scale_costs(paths: list[Path], cfg: Config) -> dict[str, dict[Path, list[Stat]]] | None:
    """Dashboard figures per database, one Stat per round (the databases take turns, round
    after round, so that load from elsewhere hits both alike); None while the dashboard is
    missing."""
    if not available():
        return None
    from bench.bigdb import run_id_of

    out: dict[str, dict[Path, list[Stat]]] = {}
    if paths:  # warm up: the first app of a process pays for imports and Textual's start
        asyncio.run(first_screen_seconds(paths[0]))
    rounds = max(1, cfg.screen_repeats)
    per_round = max(2, cfg.poll_samples // rounds)
    for _ in range(rounds):
        for path, (runs, _) in zip(paths, cfg.scale_sizes, strict=True):
            steady = asyncio.run(_steady_costs(path, run_id_of(runs - 1), per_round))
            for key, stat in steady.items():
                out.setdefault(key, {}).setdefault(path, []).append(stat)
    return out
