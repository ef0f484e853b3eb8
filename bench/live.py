"""3. Live latency: a worker process commits events while a headless dashboard
(``App.run_test``) records when each one appears on screen.

The writer is a real worker process (``bench.worker_proc``: the loop, heartbeats, lease)
driving a no-op run whose task bodies take 10-30 ms (random, so commits do not fall into
step with the dashboard's polls). Each event's commit time is its stored timestamp; the
moment it is on screen is when the dashboard's screens have taken in the poll that
brought it (see dashboard.py). Latency = on screen - committed, both wall-clock on this host.
The dashboard runs with its defaults (those ``nanoagent`` uses).

PostgreSQL (a throwaway schema per pass): the same writer, and two watchers. The push path:
a second store instance spins on ``change_token()`` (which counts LISTEN/NOTIFY messages,
no query while listening) and, when it moves, reads the new events; an event is seen when
that read returns. Then the dashboard itself on the PostgreSQL URL, as for SQLite. An
event's commit time is its stored timestamp, which on PostgreSQL is ``now()``: the start of
its transaction, a round trip or two before the COMMIT, so latencies err on the high side.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench import dashboard, pg
from bench.agent import AGENT_NAME
from bench.bigdb import build_database
from bench.common import Config, Goal, SectionResult, Stat, child_env, fmt
from bench.common import python_command as py
from nanoagent_core.models import RunState
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.stores import open_store

__all__ = ["latencies", "pg_section", "push_latencies", "run"]

TITLE = "3. Live latency: commit -> visible on the dashboard"
WRITER = "live-writer"
#: The poll interval of the diagnostic pass (the app's own default is used for the goal).
DIAGNOSTIC_POLL = 0.05
#: The goal with push (PostgreSQL), in ms.
PG_GOAL_MS = 100.0


async def _create(path: Path | str, tasks: int) -> None:
    store = await open_store(str(path))
    try:
        if WRITER in {r.run_id for r in await store.list_runs(text=WRITER)}:
            return
        await store.create_run(
            RunState(run_id=WRITER, goal="live latency", max_iterations=tasks, agent=AGENT_NAME)
        )
    finally:
        await store.close()


async def _writer(path: Path | str, events: int, interval: float) -> asyncio.subprocess.Process:
    """The writer process, claimed and ready (it starts on a line on its stdin)."""
    tasks = math.ceil(events / 1.5) + 10  # about 1.75 events per task
    await _create(path, tasks)
    child = await asyncio.create_subprocess_exec(
        *py("bench.worker_proc", str(path), WRITER, str(tasks), str(interval)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    assert child.stdout is not None
    ready = await child.stdout.readline()
    if ready.strip() != b"ready":
        child.kill()
        _, err = await child.communicate()
        raise RuntimeError(f"the writer did not start: {ready!r} {err.decode()[-300:]}")
    return child


async def _finish(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.kill()
    _, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the writer failed: {err.decode().strip()[-300:]}")


def _budget(events: int, interval: float) -> float:
    return 60 + (math.ceil(events / 1.5) + 10) * interval * 3


async def latencies(
    path: Path | str, events: int, interval: float, **options: float
) -> tuple[list[float], float]:
    """Milliseconds from commit to on screen for each event of the writer's run, and the
    dashboard's poll interval. ``options`` go to the dashboard app."""
    child = await _writer(path, events, interval)
    assert child.stdin is not None
    try:
        async with dashboard.watching(path, **options) as view:
            poll_interval = float(getattr(view.app, "poll_interval", float("nan")))
            view.probe.records.clear()
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            await asyncio.wait_for(child.wait(), _budget(events, interval))
            exited = time.perf_counter()
            await view.wait_row(WRITER, "completed", 120.0)  # bounds a hang only
            # The row can show "completed" before the last events are shown (on a loaded
            # machine they come a page per poll): wait for a poll that began after the writer
            # exited and found nothing new.
            await view.probe.caught_up_after(exited, 120.0)  # bounds a hang only
            out: list[float] = []
            for record in view.probe.records:
                if record.shown_wall is None:
                    continue
                out += [
                    (record.shown_wall - ts) * 1e3
                    for _, run_id, ts in record.events
                    if run_id == WRITER
                ]
    finally:
        await _finish(child)
    return out, poll_interval


async def push_latencies(location: str, events: int, interval: float) -> list[float]:
    """Milliseconds from commit to seen by a second store instance on PostgreSQL: its
    ``change_token()`` moved (a NOTIFY arrived) and the read of the new events returned."""
    child = await _writer(location, events, interval)
    assert child.stdin is not None
    watcher = await PostgresStore.open(location, read_only=True, create=False)
    out: list[float] = []
    try:
        token = await watcher.change_token()  # starts the listener
        if not watcher.listening:
            raise RuntimeError("the watcher is not listening (no push)")
        last = max((e.id for e in await watcher.read_events(limit=100_000)), default=0)
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        waiter = asyncio.ensure_future(child.wait())
        deadline = time.monotonic() + _budget(events, interval)
        while time.monotonic() < deadline:
            finished = waiter.done()
            now = await watcher.change_token()
            if now != token or finished:
                token = now
                got = await watcher.read_events(after_id=last, limit=100_000)
                seen = time.time()
                for event in got:
                    last = max(last, event.id)
                    if event.run_id == WRITER:
                        out.append((seen - event.ts.timestamp()) * 1e3)
                if finished:
                    break
            await asyncio.sleep(0.001)
        waiter.cancel()
    finally:
        await watcher.close()
        await _finish(child)
    return out


@dataclass(frozen=True)
class Passes:
    """The latencies (ms) of several passes of one configuration."""

    per_pass: tuple[Stat, ...]

    def percentile(self, q: float) -> Stat:
        """The ``q`` quantile of each pass: its median over the passes is the figure."""
        return Stat.of(one.quantile(q) for one in self.per_pass)

    @property
    def pooled(self) -> Stat:
        return Stat(tuple(v for one in self.per_pass for v in one.values))

    def summary(self) -> str:
        p95 = self.percentile(0.95)
        return (
            f"p95 {fmt(p95.median)} ms (median of {len(self.per_pass)} passes,"
            f" {fmt(p95.low)}-{fmt(p95.high)}; p50 {fmt(self.percentile(0.5).median)},"
            f" p99 {fmt(self.percentile(0.99).median)}; {self.pooled.n} events)"
        )


def _passes(count: int, one: Callable[[], list[float]]) -> Passes:
    return Passes(tuple(Stat.of(one()) for _ in range(max(1, count))))


def _row(what: str, passes: Passes) -> list[str]:
    p50, p95, p99 = (passes.percentile(q) for q in (0.50, 0.95, 0.99))
    return [what, "ms", fmt(p50.median), fmt(p95.median), f"{fmt(p95.low)}-{fmt(p95.high)}",
            fmt(p99.median), str(passes.pooled.n), str(len(passes.per_pass))]  # fmt: skip


def pg_section(cfg: Config) -> tuple[list[list[str]], list[Goal], list[str], dict[str, Stat]]:
    """The PostgreSQL rows, goal, notes and figures (rows say ``skipped: no server`` when no
    server answers)."""
    skipped = pg.skip_reason(cfg.pg_url)
    goal_what = "3. live latency p95 (PostgreSQL, push)"
    target = f"<= {PG_GOAL_MS:.0f} ms"
    if skipped is not None or cfg.pg_url is None:
        rows = [["PostgreSQL: commit -> seen (push)", "ms", pg.SKIPPED, *[""] * 5]]
        return rows, [Goal(goal_what, target, pg.SKIPPED, None, skipped or "")], [], {}
    url = cfg.pg_url
    rows: list[list[str]] = []
    notes: list[str] = []
    data: dict[str, Stat] = {}

    def push_pass() -> list[float]:
        with pg.throwaway_schema(url, "push") as location:
            return asyncio.run(push_latencies(location, cfg.live_events, cfg.live_interval))

    push = _passes(cfg.live_passes, push_pass)
    rows.append(_row("PostgreSQL: commit -> seen by a 2nd store (NOTIFY + read)", push))
    data["pg_push_ms"] = push.pooled
    # The dashboard with its defaults only: on PostgreSQL it already polls every 0.02 s (an
    # idle poll reads the listener's counter, no query), so a shorter-poll pass adds nothing.
    screen: Passes | None = None
    screen_poll = float("nan")
    polls: list[float] = []

    def screen_pass() -> list[float]:
        with pg.throwaway_schema(url, "dash") as location:
            values, poll = asyncio.run(latencies(location, cfg.live_events, cfg.live_interval))
        polls.append(poll)
        return values

    if not dashboard.available():
        notes.append("PostgreSQL through the dashboard: pending (no dashboard)")
    else:
        try:
            screen = _passes(cfg.live_passes, screen_pass)
        except Exception as exc:
            notes.append(
                "PostgreSQL through the dashboard: failed"
                f" ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            )
    if screen is not None:
        screen_poll = polls[0]
        what = f"PostgreSQL: commit -> on screen, poll every {screen_poll:g} s (default)"
        rows.append(_row(what, screen))
        data["pg_latency_ms"] = screen.pooled
    push_p95 = push.percentile(0.95).median
    why = f"push path (2nd store, NOTIFY + read) p95 {fmt(push_p95)} ms"
    if screen is not None:
        p95 = screen.percentile(0.95).median
        measured = screen.summary().replace(" ms (", " ms on screen (", 1)
        why = (
            f"the dashboard polls every {screen_poll:g} s (idle polls read the listener's"
            f" counter, no query), so an event waits for the next poll; {why}"
        )
    else:
        p95 = push_p95
        measured = push.summary().replace(" ms (", " ms, push path only (", 1)
    notes.append(
        f"PostgreSQL ({pg.shown(url)}, a throwaway schema per pass, no other runs): the"
        " same writer; commit times are the events' now() (transaction start, before COMMIT)."
    )
    return rows, [Goal(goal_what, target, measured, p95 <= PG_GOAL_MS, why)], notes, data


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    headers = ["what", "unit", "p50", "p95", "p95 range", "p99", "events", "passes"]
    rows: list[list[str]] = []
    goals: list[Goal] = []
    data: dict[str, Stat] = {}
    notes: list[str] = []
    if not dashboard.available():
        rows.append(["SQLite: commit -> on screen", "ms", *["pending"] * 5, "0", "0"])
        goals.append(Goal("3. live latency p95", "<= 200 ms", "pending", None))
        notes.append(
            "pending: nanoagent_tui.app (the dashboard) does not exist yet;"
            f" {cfg.live_events} events will be timed once it does."
        )
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        passes: list[tuple[str, dict[str, float]]] = [("defaults", {})]
        if cfg.live_diagnostic:
            passes.append(("diagnostic", {"poll_interval": DIAGNOSTIC_POLL}))
        for label, options in passes:
            path = workdir / f"live-{label}.db"
            polls: list[float] = []

            def sqlite_pass(
                path: Path = path, options: dict[str, float] = options, polls: list[float] = polls
            ) -> list[float]:
                for leftover in path.parent.glob(f"{path.name}*"):
                    leftover.unlink()
                build_database(path, 50, 500)  # some finished runs around the live one
                values, poll = asyncio.run(
                    latencies(path, cfg.live_events, cfg.live_interval, **options)
                )
                polls.append(poll)
                return values

            measured = _passes(cfg.live_passes, sqlite_pass)
            poll_interval = polls[0]
            what = f"SQLite: commit -> on screen, poll every {poll_interval:g} s"
            what += " (default)" if not options else " (diagnostic: what a shorter poll gives)"
            rows.append(_row(what, measured))
            p95 = measured.percentile(0.95).median
            data["latency_ms" if not options else "latency_diag_ms"] = measured.pooled
            if not options:
                goals.append(
                    Goal(
                        "3. live latency p95",
                        "<= 200 ms",
                        measured.summary(),
                        p95 <= 200,
                        why=f"an event waits for the next poll: the default interval is"
                        f" {poll_interval:g} s",
                    )
                )
            elif goals:
                goals[0] = replace(
                    goals[0],
                    why=goals[0].why
                    + f"; polling every {poll_interval:g} s gives p95 {fmt(p95)} ms",
                )
        notes += [
            f"the writer commits a task every {cfg.live_interval * 500:.0f}-"
            f"{cfg.live_interval * 1500:.0f} ms (each task commit carries 2 events, each"
            " reflection 1); an event waits for the next poll, so latency is about"
            " uniform(0, poll interval) plus one refresh.",
            f"Each configuration runs {cfg.live_passes} passes (a fresh database, writer and"
            " dashboard each); p50/p95/p99 are nearest-rank percentiles over every event of a"
            " pass's run, and the table gives their median over the passes (p95 range: the"
            " lowest and highest pass).",
        ]
    pg_rows, pg_goals, pg_notes, pg_data = pg_section(cfg)
    rows += pg_rows
    goals += pg_goals
    notes += pg_notes
    data.update(pg_data)
    return SectionResult(
        title=TITLE,
        headers=headers,
        rows=rows,
        goals=goals,
        notes=notes,
        seconds=time.perf_counter() - began,
        data=data,
    )
