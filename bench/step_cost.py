"""1. Step cost: the loop with a no-op agent at synchronous NORMAL and FULL, against the floor
(plain sqlite3 in WAL, one transaction per step: insert one ~200-byte row, update one
position row, same synchronous setting), measured interleaved in the same invocation; and
the same loop on PostgreSQL (a throwaway schema on the server of ``Config.pg_url``), sample
by sample between the SQLite ones."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from bench import pg
from bench.agent import AGENT_NAME, make_noop_agent
from bench.common import Config, Goal, SectionResult, Stat, fmt, fmt_stat, paired_ratios
from nanoagent_core.loop import Loop
from nanoagent_core.models import RunState
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import Step, Store
from nanoagent_core.sqlite import SQLiteStore, Synchronous

__all__ = [
    "LoopSample",
    "floor_steps_per_s",
    "loop_on",
    "loop_sample",
    "pg_rows",
    "pg_sample",
    "replay_on",
    "replay_sample",
    "run",
]

PAYLOAD = "x" * 200
_SYNCS: tuple[Synchronous, ...] = ("NORMAL", "FULL")
#: Floor, loop and replay alternate in this many chunks within each sample.
CHUNKS = 4
#: PostgreSQL samples that also replay their commits through the store alone (a replay
#: costs as much as the loop: ~2.5 s at full size).
PG_REPLAYS = 2


def _floor_db(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    conn.execute("CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id TEXT, data TEXT)")
    conn.execute("CREATE TABLE position (run_id TEXT PRIMARY KEY, step INTEGER)")
    conn.execute("INSERT INTO position VALUES ('run', 0)")
    return conn


def _floor_steps(conn: sqlite3.Connection, steps: int) -> None:
    for step in range(1, steps + 1):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO steps (run_id, data) VALUES ('run', ?)", (PAYLOAD,))
        conn.execute("UPDATE position SET step = ? WHERE run_id = 'run'", (step,))
        conn.execute("COMMIT")


def floor_steps_per_s(path: Path, synchronous: Synchronous, steps: int) -> float:
    """Steps per second of the floor: what one durable step costs with nothing on top."""
    conn = _floor_db(path, synchronous)
    try:
        began = time.perf_counter()
        _floor_steps(conn, steps)
        elapsed = time.perf_counter() - began
    finally:
        conn.close()
    return steps / elapsed


def _wal_frames(path: Path) -> int:
    """Frames in the WAL of ``path`` (checkpointing them, which readers here do not mind)."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def wal_pages_per_commit(workdir: Path, tasks_per_run: int) -> tuple[float, float]:
    """Pages each commit appends to the WAL (what FULL syncs and checkpoints copy back): the
    floor's and the loop's, with automatic checkpoints off. Counts, not timings."""
    steps = 200
    floor_path, loop_path = workdir / "pages-floor.db", workdir / "pages-loop.db"
    conn = _floor_db(floor_path, "NORMAL")
    try:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _floor_steps(conn, steps)
        floor_pages = _wal_frames(floor_path) / steps
    finally:
        conn.close()

    async def loop_pages() -> float:
        store = await SQLiteStore.open(loop_path, extra_pragmas={"wal_autocheckpoint": 0})
        try:
            await loop_on(store, tasks_per_run, 1, prefix="warm")
            _wal_frames(loop_path)  # start counting from an empty log
            sample = await loop_on(store, tasks_per_run, 2, prefix="pages")
            return _wal_frames(loop_path) / sample.steps
        finally:
            await store.close()

    return floor_pages, asyncio.run(loop_pages())


@dataclass(frozen=True)
class LoopSample:
    tasks: int
    steps: int  #: commits made by the loop
    seconds: float  #: time inside Loop.run only
    recorded: tuple[tuple[str, tuple[Step, ...]], ...] = ()  #: (run id, steps) if asked

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.seconds

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds


async def loop_sample(
    path: Path,
    synchronous: Synchronous,
    tasks_per_run: int,
    runs: int,
    *,
    record: bool = False,
    journal: bool = False,
) -> LoopSample:
    """Drive ``runs`` runs of ``tasks_per_run`` no-op tasks each, one after another, through
    the real Loop on a SQLiteStore; time only the loops. ``journal``: each attempt commits a
    journal entry (a ~1.5 KB conversation and its usage) with its outcome."""
    store = await SQLiteStore.open(path, synchronous=synchronous)
    try:
        return await loop_on(store, tasks_per_run, runs, record=record, journal=journal)
    finally:
        await store.close()


async def loop_on(
    store: Store,
    tasks_per_run: int,
    runs: int,
    *,
    record: bool = False,
    prefix: str = "step",
    journal: bool = False,
) -> LoopSample:
    """:func:`loop_sample` on a store already open (run ids ``{prefix}-N``)."""
    owner = current_owner()
    total_tasks = total_steps = 0
    seconds = 0.0
    recorded: list[tuple[str, tuple[Step, ...]]] = []
    for number in range(runs):
        run_id = f"{prefix}-{number}"
        await store.create_run(
            RunState(run_id=run_id, goal="bench", max_iterations=tasks_per_run, agent=AGENT_NAME)
        )
        claimed = await store.claim_run(run_id, owner, expected_epoch=0, lease_seconds=600)
        steps: list[Step] = []
        loop = Loop(
            store,
            claimed,
            make_noop_agent(tasks_per_run, journal=journal),
            on_step=lambda _run, step, into=steps: into.append(step),
        )
        began = time.perf_counter()
        final = await loop.run()
        seconds += time.perf_counter() - began
        if final.status.value != "completed" or final.tasks_done != tasks_per_run:
            raise RuntimeError(f"bench run {run_id} ended {final.status}: {final.error}")
        total_tasks += final.tasks_done
        total_steps += len(steps)
        if record:
            recorded.append((run_id, tuple(steps)))
    return LoopSample(total_tasks, total_steps, seconds, tuple(recorded))


async def replay_sample(path: Path, synchronous: Synchronous, sample: LoopSample) -> LoopSample:
    """Commit the steps a loop sample made, through the store alone (no loop, no agent): how
    much of a step's cost is the store's (thread hop, SQL, decoding)."""
    store = await SQLiteStore.open(path, synchronous=synchronous)
    try:
        return await replay_on(store, sample)
    finally:
        await store.close()


async def replay_on(store: Store, sample: LoopSample, *, prefix: str = "") -> LoopSample:
    """:func:`replay_sample` on a store already open (run ids prefixed with ``prefix``)."""
    owner = current_owner()
    steps_done = tasks = 0
    seconds = 0.0
    for recorded_id, steps in sample.recorded:
        run_id = prefix + recorded_id
        await store.create_run(
            RunState(run_id=run_id, goal="bench", max_iterations=10_000, agent=AGENT_NAME)
        )
        claimed = await store.claim_run(run_id, owner, expected_epoch=0, lease_seconds=600)
        began = time.perf_counter()
        final = claimed
        for step in steps:
            final = await store.commit_step(run_id, step, epoch=claimed.epoch)
        seconds += time.perf_counter() - began
        steps_done += len(steps)
        tasks += final.tasks_done
    return LoopSample(tasks, steps_done, seconds)


def _merge(parts: list[LoopSample]) -> LoopSample:
    return LoopSample(
        sum(p.tasks for p in parts), sum(p.steps for p in parts), sum(p.seconds for p in parts)
    )


async def pg_sample(
    location: str, tasks_per_run: int, runs: int, tag: str, *, replay: bool = True
) -> PgSample:
    """The loop on PostgreSQL, then (if ``replay``) the same commits replayed through the
    store alone."""
    store = await PostgresStore.open(location)
    try:
        loop = await loop_on(store, tasks_per_run, runs, record=replay, prefix=f"pg{tag}")
        again = await replay_on(store, loop, prefix="re-") if replay else None
    finally:
        await store.close()
    return PgSample(loop, again)


@dataclass(frozen=True)
class PgSample:
    loop: LoopSample
    replay: LoopSample | None


def pg_rows(
    cfg: Config, samples: list[PgSample], sqlite_normal: list[LoopSample], skipped: str | None
) -> tuple[list[list[str]], dict[str, Stat]]:
    """The PostgreSQL rows of the table (each saying ``skipped: no server`` when skipped)."""
    short = f"{cfg.short_runs} runs x {cfg.short_run_tasks} tasks"
    what = [
        (f"loop, {short}", "tasks/s"),
        (f"loop, {short}", "us/task"),
        (f"loop, {short}", "commits/s"),
        (f"loop, {short}", "us/commit"),
        ("store alone: same commits replayed (first samples)", "commits/s"),
        ("loop tasks/s / SQLite NORMAL loop tasks/s", "ratio"),
    ]
    if skipped is not None or not samples:
        return [["PostgreSQL", w, unit, pg.SKIPPED, "", ""] for w, unit in what], {}
    data = {
        "pg_loop_tasks": Stat.of(s.loop.tasks_per_s for s in samples),
        "pg_us_task": Stat.of(1e6 / s.loop.tasks_per_s for s in samples),
        "pg_loop_steps": Stat.of(s.loop.steps_per_s for s in samples),
        "pg_us_step": Stat.of(1e6 / s.loop.steps_per_s for s in samples),
        "pg_replay_steps": Stat.of(s.replay.steps_per_s for s in samples if s.replay),
        "pg_vs_sqlite_tasks": paired_ratios(
            [s.loop.tasks_per_s for s in samples],
            [s.tasks_per_s for s in sqlite_normal[: len(samples)]],
        ),
    }
    rows = [
        ["PostgreSQL", w, unit, *fmt_stat(stat)]
        for (w, unit), stat in zip(what, data.values(), strict=True)
    ]
    return rows, data


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    floor: dict[str, list[float]] = {s: [] for s in _SYNCS}
    loops: dict[str, list[LoopSample]] = {s: [] for s in _SYNCS}
    replays: dict[str, list[LoopSample]] = {s: [] for s in _SYNCS}
    longs: list[LoopSample] = []
    journaled: list[LoopSample] = []  #: NORMAL loops whose attempts are journaled
    pg_samples: list[PgSample] = []
    skipped = pg.skip_reason(cfg.pg_url)
    schema = contextlib.ExitStack()
    location = ""
    if skipped is None and cfg.pg_url is not None:
        location = schema.enter_context(pg.throwaway_schema(cfg.pg_url, "step"))
    counter = 0

    def fresh() -> Path:
        nonlocal counter
        counter += 1
        return workdir / f"step-{counter}.db"

    chunks = max(1, min(CHUNKS, cfg.short_runs))
    with schema:
        for repeat in range(cfg.repeats):
            for sync in _SYNCS:
                # Floor, loop and replay alternate in small chunks, so that a burst of disk
                # or CPU load from elsewhere hits all three alike.
                floor_seconds = 0.0
                parts: list[LoopSample] = []
                replayed: list[LoopSample] = []
                journal_parts: list[LoopSample] = []
                for chunk in range(chunks):
                    steps = max(1, cfg.floor_steps // chunks)
                    floor_seconds += steps / floor_steps_per_s(fresh(), sync, steps)
                    runs = cfg.short_runs // chunks + (1 if chunk < cfg.short_runs % chunks else 0)
                    part = asyncio.run(
                        loop_sample(fresh(), sync, cfg.short_run_tasks, runs, record=True)
                    )
                    parts.append(part)
                    replayed.append(asyncio.run(replay_sample(fresh(), sync, part)))
                    if sync == "NORMAL":  # the same loop, each outcome with a journal entry
                        part = asyncio.run(
                            loop_sample(fresh(), sync, cfg.short_run_tasks, runs, journal=True)
                        )
                        journal_parts.append(part)
                if journal_parts:
                    journaled.append(_merge(journal_parts))
                floor[sync].append(max(1, cfg.floor_steps // chunks) * chunks / floor_seconds)
                loops[sync].append(_merge(parts))
                replays[sync].append(_merge(replayed))
            if location:  # the same runs on PostgreSQL, right after SQLite's
                pg_samples.append(
                    asyncio.run(
                        pg_sample(
                            location,
                            cfg.short_run_tasks,
                            cfg.short_runs,
                            str(repeat),
                            replay=repeat < PG_REPLAYS,
                        )
                    )
                )
            longs.append(asyncio.run(loop_sample(fresh(), "NORMAL", cfg.long_run_tasks, 1)))
    floor_pages, loop_pages = wal_pages_per_commit(workdir, cfg.short_run_tasks)

    rows: list[list[str]] = []
    data: dict[str, Stat] = {}
    for sync in _SYNCS:
        fl = Stat.of(floor[sync])
        lt = Stat.of(s.tasks_per_s for s in loops[sync])
        ls = Stat.of(s.steps_per_s for s in loops[sync])
        rp = Stat.of(s.steps_per_s for s in replays[sync])
        data[f"floor_{sync}"] = fl
        data[f"loop_tasks_{sync}"] = lt
        data[f"loop_steps_{sync}"] = ls
        data[f"replay_steps_{sync}"] = rp
        data[f"ratio_tasks_{sync}"] = paired_ratios(
            [s.tasks_per_s for s in loops[sync]], floor[sync]
        )
        data[f"ratio_steps_{sync}"] = paired_ratios(
            [s.steps_per_s for s in loops[sync]], floor[sync]
        )
        per_task = Stat.of(1e6 / s.tasks_per_s for s in loops[sync])
        per_step = Stat.of(1e6 / s.steps_per_s for s in loops[sync])
        data[f"us_task_{sync}"] = per_task
        short = f"{cfg.short_runs} runs x {cfg.short_run_tasks} tasks"
        store = f"SQLite {sync}"
        rows += [
            [store, "floor: plain sqlite3, 1 txn per step", "steps/s", *fmt_stat(fl)],
            [store, f"loop, {short}", "tasks/s", *fmt_stat(lt)],
            [store, f"loop, {short}", "us/task", *fmt_stat(per_task)],
            [store, f"loop, {short}", "commits/s", *fmt_stat(ls)],
            [store, f"loop, {short}", "us/commit", *fmt_stat(per_step)],
            [store, "store alone: same commits replayed", "commits/s", *fmt_stat(rp)],
            [
                store,
                "loop tasks/s / floor steps/s",
                "ratio",
                *fmt_stat(data[f"ratio_tasks_{sync}"]),
            ],
            [
                store,
                "loop commits/s / floor steps/s",
                "ratio",
                *fmt_stat(data[f"ratio_steps_{sync}"]),
            ],
        ]
    lt_long = Stat.of(s.tasks_per_s for s in longs)
    data["loop_tasks_long_NORMAL"] = lt_long
    data["long_vs_short_NORMAL"] = paired_ratios(
        [s.tasks_per_s for s in longs], [s.tasks_per_s for s in loops["NORMAL"]]
    )
    rows += [
        [
            "SQLite NORMAL",
            f"loop, 1 run x {cfg.long_run_tasks} tasks",
            "tasks/s",
            *fmt_stat(lt_long),
        ],
        [
            "SQLite NORMAL",
            "long run / short runs",
            "ratio",
            *fmt_stat(data["long_vs_short_NORMAL"]),
        ],
        ["SQLite", "WAL pages per commit: floor", "pages", *fmt_stat(Stat.of([floor_pages]))],
        ["SQLite", "WAL pages per commit: loop", "pages", *fmt_stat(Stat.of([loop_pages]))],
    ]
    # the journal's cost: us per commit with an entry per task outcome / without, paired by
    # sample (the same chunks, interleaved)
    data["journal_cost_NORMAL"] = paired_ratios(
        [1 / s.steps_per_s for s in journaled], [1 / s.steps_per_s for s in loops["NORMAL"]]
    )
    journal_us = Stat.of(1e6 / s.steps_per_s for s in journaled)
    short = f"{cfg.short_runs} runs x {cfg.short_run_tasks} tasks"
    data["us_step_journal_NORMAL"] = journal_us
    rows += [
        ["SQLite NORMAL", f"loop + journal entry per task, {short}", "us/commit",
         *fmt_stat(journal_us)],
        ["SQLite NORMAL", "step cost with journal / without", "ratio",
         *fmt_stat(data["journal_cost_NORMAL"])],
    ]  # fmt: skip
    more_rows, pg_data = pg_rows(cfg, pg_samples, loops["NORMAL"], skipped)
    rows += more_rows
    data.update(pg_data)
    full_ratio = data["ratio_tasks_FULL"].median
    normal_tasks = data["loop_tasks_NORMAL"].median

    def split(sync: str) -> tuple[float, float, float]:
        """us per step of the floor, us per commit of the loop, us per commit of the store."""
        return (
            1e6 / data[f"floor_{sync}"].median,
            1e6 / data[f"loop_steps_{sync}"].median,
            1e6 / data[f"replay_steps_{sync}"].median,
        )

    f_floor, f_loop, f_store = split("FULL")
    n_floor, n_loop, n_store = split("NORMAL")
    goals = [
        Goal(
            "1. loop at FULL vs floor",
            ">= 70% of floor steps/s",
            f"{full_ratio:.0%} (tasks/s); {data['ratio_steps_FULL'].median:.0%} (commits/s)",
            full_ratio >= 0.70,
            why=f"floor {f_floor:.0f} us/step; loop {f_loop:.0f} us/commit (the same commits"
            f" through the store alone: {f_store:.0f}); a commit writes {loop_pages:.1f} WAL"
            f" pages (run row and its two indexes, task, result, event and its index) to the"
            f" floor's {floor_pages:.1f}; a task is 4/3 commits, so even a free loop tops out"
            " at 75%",
        ),
        Goal(
            "1. loop at NORMAL",
            ">= 2,000 tasks/s",
            f"{fmt(normal_tasks)} tasks/s ({cfg.short_run_tasks}-task runs);"
            f" {fmt(lt_long.median)} ({cfg.long_run_tasks}-task run)",
            normal_tasks >= 2000 and lt_long.median >= 2000,
            why=f"{n_loop:.0f} us/commit vs the floor's {n_floor:.0f}: store (thread hop, SQL,"
            f" decoding) {n_store:.0f}, loop Python {n_loop - n_store:.0f}; a long run is"
            f" {data['long_vs_short_NORMAL'].median:.2f}x as fast as a short one",
        ),
        Goal(
            "1. journal and ledger",
            "<= 1.2x the step cost",
            f"{data['journal_cost_NORMAL'].median:.2f}x ({fmt(journal_us.median)} us/commit"
            f" with a journal entry per task outcome vs {n_loop:.0f} without)",
            data["journal_cost_NORMAL"].median <= 1.2,
            why="each task outcome also builds an Attempt, inserts a ~1.5 KB journal row"
            " (its table page and primary-key index page join the commit's WAL pages) and adds"
            " its usage to the run row's totals, in the same transaction; planning and"
            " reflection commits carry no entry. Paired per sample: noisy on a busy machine",
        ),
    ]
    notes = [
        "Each task is one commit (its outcome, its result and the next task's start ride"
        " together); every 3rd iteration adds a reflection commit (the seed's rule), so a"
        " task costs 4/3 commits.",
        f"Within each sample, floor, loop and replay alternate in {chunks} chunks; ratios"
        " pair each sample's loop with its own floor.",
        "'store alone' replays the very same steps through SQLiteStore.commit_step without the"
        " loop: the gap between it and the loop is the loop's own Python work.",
    ]
    if skipped is not None:
        notes.append(skipped)
    elif cfg.pg_url is not None and pg_samples:
        notes.append(
            f"PostgreSQL: {pg.shown(cfg.pg_url)}, a throwaway schema, with the server's own"
            " durability settings (see Machine). Each"
            " sample runs right after the SQLite samples of the same repeat; the ratio pairs"
            " it with that repeat's SQLite NORMAL loop. A step is two round trips (statements"
            " in pipeline mode, then event ids + NOTIFY + COMMIT)."
        )
    return SectionResult(
        title="1. Step cost: no-op loop vs plain-sqlite3 floor",
        headers=["store", "what", "unit", "median", "min", "max"],
        rows=rows,
        goals=goals,
        notes=notes,
        seconds=time.perf_counter() - began,
        data=data,
    )
