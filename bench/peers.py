"""6. Peers: nanoagent beside LangGraph (SqliteSaver, latest-only state) and DBOS (SQLite
system database in WAL) on the same workload in the same invocation: one run of N tasks, each
with a 200-byte result, every durable write at ``synchronous = FULL``, trial after trial in
rotating order, with the plain-sqlite3 floor of section 1 measured in the same trials.

The peers come from the ``bench`` dependency group (``uv run --group bench python -m bench
--sections peers``); without it the section is skipped with a one-line reason."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypedDict

from bench.agent import AGENT_NAME, make_noop_agent
from bench.common import Config, Goal, SectionResult, Stat, fmt, paired_ratios
from bench.step_cost import _floor_db  # pyright: ignore[reportPrivateUsage]
from nanoagent_core.loop import Loop
from nanoagent_core.models import RunState
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import Step
from nanoagent_core.sqlite import SQLiteStore

__all__ = ["PAYLOAD", "SYSTEMS", "PeerSample", "missing", "run", "trial"]

PAYLOAD = "x" * 200
#: The modules of the bench group; the section is skipped if one is missing.
PEER_MODULES = ("langgraph", "langgraph.checkpoint.sqlite", "dbos")
COMMAND = "uv run --group bench python -m bench --sections peers"
FLOOR = "plain sqlite3 (floor)"
NANOAGENT = "nanoagent (SQLiteStore, FULL)"
LANGGRAPH = "LangGraph SqliteSaver"
LANGGRAPH_ASYNC = "LangGraph AsyncSqliteSaver"
DBOS_NAME = "DBOS (SQLite system DB)"
SYSTEMS = (FLOOR, NANOAGENT, LANGGRAPH, LANGGRAPH_ASYNC, DBOS_NAME)


DISTRIBUTIONS = ("langgraph", "langgraph-checkpoint-sqlite", "dbos")


def versions() -> str:
    out: list[str] = []
    for name in DISTRIBUTIONS:
        try:
            out.append(version(name))
        except PackageNotFoundError:
            out.append("not installed")
    return " / ".join(out)


def missing() -> str | None:
    """Why the peers cannot run here (one line), or None."""
    for name in PEER_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"skipped: bench dependency group not installed (no {name}); run: {COMMAND}"
    return None


@dataclass(frozen=True)
class PeerSample:
    tasks: int
    steps: int  #: durable steps (checkpoints, commits) the system made
    seconds: float
    latencies: tuple[float, ...]  #: seconds from each durable step to the next
    settings: str = ""  #: what the database connection reported (journal mode, synchronous)

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.seconds

    def quantile(self, q: float) -> float:
        return Stat.of(self.latencies).quantile(q)


def _intervals(began: float, marks: list[float]) -> tuple[float, ...]:
    out: list[float] = []
    last = began
    for mark in marks:
        out.append(mark - last)
        last = mark
    return tuple(out)


def _steps(starts: list[float], end: float) -> tuple[float, ...]:
    """Seconds from each step's start to the next one's (the last: to the end). The times a
    stream yields are no good for this: it can hand over two steps' values back to back."""
    return _intervals(starts[0], [*starts[1:], end])


def _pragmas(conn: sqlite3.Connection) -> str:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return f"journal_mode={mode}, synchronous={_sync_name(sync)}"


_SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _sync_name(value: object) -> str:
    return _SYNC_NAMES.get(value, str(value)) if isinstance(value, int) else str(value)


# -- the floor and nanoagent ------------------------------------------------------------------


def floor_trial(path: Path, tasks: int) -> PeerSample:
    """Plain sqlite3, one transaction per task: insert a 200-byte row, update a position."""
    conn = _floor_db(path, "FULL")
    try:
        marks: list[float] = []
        began = time.perf_counter()
        for step in range(1, tasks + 1):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO steps (run_id, data) VALUES ('run', ?)", (PAYLOAD,))
            conn.execute("UPDATE position SET step = ? WHERE run_id = 'run'", (step,))
            conn.execute("COMMIT")
            marks.append(time.perf_counter())
        seconds = marks[-1] - began
        settings = _pragmas(conn)
    finally:
        conn.close()
    return PeerSample(tasks, tasks, seconds, _intervals(began, marks), settings)


async def _nanoagent(path: Path, tasks: int) -> PeerSample:
    store = await SQLiteStore.open(path, synchronous="FULL")
    try:
        run_id = "peer"
        await store.create_run(
            RunState(run_id=run_id, goal="bench", max_iterations=tasks, agent=AGENT_NAME)
        )
        owner = current_owner()
        claimed = await store.claim_run(run_id, owner, expected_epoch=0, lease_seconds=600)
        marks: list[float] = []

        def on_step(_run: RunState, _step: Step) -> None:
            marks.append(time.perf_counter())

        loop = Loop(store, claimed, make_noop_agent(tasks, result=PAYLOAD), on_step=on_step)
        began = time.perf_counter()
        final = await loop.run()
        seconds = time.perf_counter() - began
        if final.status.value != "completed" or final.tasks_done != tasks:
            raise RuntimeError(f"nanoagent run ended {final.status}: {final.error}")
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        settings = (
            _pragmas(conn).split(",")[0] + ", synchronous=FULL (SQLiteStore.open(synchronous=))"
        )
    finally:
        conn.close()
    return PeerSample(final.tasks_done, len(marks), seconds, _intervals(began, marks), settings)


def nanoagent_trial(path: Path, tasks: int) -> PeerSample:
    """The real Loop with a no-op agent whose every result is 200 bytes, on a SQLiteStore
    at FULL (what ``nanoagent run --durable`` opens)."""
    return asyncio.run(_nanoagent(path, tasks))


# -- LangGraph --------------------------------------------------------------------------------


class _State(TypedDict):
    n: int
    result: str  #: the latest task's result only (no reducer: each step overwrites it)


def _graph(tasks: int, checkpointer: Any, marks: list[float]) -> Any:
    """The graph; ``marks`` gets the time each step's node starts (the previous step's
    checkpoint is written by then: durability "sync")."""
    from langgraph.graph import END, START, StateGraph  # pyright: ignore[reportMissingImports]

    def work(state: _State) -> dict[str, Any]:
        marks.append(time.perf_counter())
        return {"n": state["n"] + 1, "result": PAYLOAD}

    def route(state: _State) -> str:
        return END if state["n"] >= tasks else "work"

    builder = StateGraph(_State)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_conditional_edges("work", route)
    return builder.compile(checkpointer=checkpointer)


def _config(tasks: int) -> Any:
    return {"configurable": {"thread_id": "peer"}, "recursion_limit": tasks + 10}


def langgraph_trial(path: Path, tasks: int) -> PeerSample:
    """One thread through a one-node graph looping ``tasks`` times; SqliteSaver on its own
    connection set to synchronous FULL (the saver puts the file in WAL); durability "sync"
    (each checkpoint written before the next step starts)."""
    from langgraph.checkpoint.sqlite import SqliteSaver  # pyright: ignore[reportMissingImports]

    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        conn.execute("PRAGMA synchronous = FULL")
        saver = SqliteSaver(conn)
        saver.setup()
        marks: list[float] = []
        graph = _graph(tasks, saver, marks)
        began = time.perf_counter()
        final: Any = None
        for chunk in graph.stream(
            {"n": 0, "result": ""}, _config(tasks), stream_mode="values", durability="sync"
        ):
            final = chunk
        seconds = time.perf_counter() - began
        settings = _pragmas(conn)
    finally:
        conn.close()
    if final is None or final["n"] != tasks:
        raise RuntimeError(f"LangGraph ended at {final!r}")
    return PeerSample(tasks, len(marks), seconds, _steps(marks, began + seconds), settings)


async def _langgraph_async(path: Path, tasks: int) -> PeerSample:
    import aiosqlite  # pyright: ignore[reportMissingImports]  # with the langgraph peer only
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # pyright: ignore[reportMissingImports]

    conn = await aiosqlite.connect(path)
    try:
        await conn.execute("PRAGMA synchronous = FULL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        marks: list[float] = []
        graph = _graph(tasks, saver, marks)
        began = time.perf_counter()
        final: Any = None
        async for chunk in graph.astream(
            {"n": 0, "result": ""}, _config(tasks), stream_mode="values", durability="sync"
        ):
            final = chunk
        seconds = time.perf_counter() - began
        async with conn.execute("PRAGMA journal_mode") as cur:
            mode = (await cur.fetchone() or ("?",))[0]
        async with conn.execute("PRAGMA synchronous") as cur:
            sync = (await cur.fetchone() or ("?",))[0]
    finally:
        await conn.close()
    if final is None or final["n"] != tasks:
        raise RuntimeError(f"LangGraph (async) ended at {final!r}")
    settings = f"journal_mode={mode}, synchronous={_sync_name(sync)}"
    return PeerSample(tasks, len(marks), seconds, _steps(marks, began + seconds), settings)


def langgraph_async_trial(path: Path, tasks: int) -> PeerSample:
    """As :func:`langgraph_trial` with AsyncSqliteSaver (aiosqlite) and ``astream``."""
    return asyncio.run(_langgraph_async(path, tasks))


# -- DBOS -------------------------------------------------------------------------------------

_DBOS_MARKS: list[float] = []
_DBOS_WORKFLOW: list[Callable[[int], int]] = []


def _dbos_workflow() -> Callable[[int], int]:
    """The workflow (one step per task), registered once per process before DBOS starts."""
    if _DBOS_WORKFLOW:
        return _DBOS_WORKFLOW[0]
    from dbos import DBOS  # pyright: ignore[reportMissingImports]

    @DBOS.step()
    def peer_task(number: int) -> str:
        return PAYLOAD

    @DBOS.workflow()
    def peer_run(tasks: int) -> int:
        for number in range(tasks):
            peer_task(number)
            _DBOS_MARKS.append(time.perf_counter())
        return tasks

    _DBOS_WORKFLOW.append(peer_run)
    return peer_run


def dbos_trial(path: Path, tasks: int) -> PeerSample:
    """One workflow of ``tasks`` steps, each returning 200 bytes, on DBOS's SQLite system
    database. DBOS sets no journal mode or synchronous of its own (it sets busy_timeout,
    foreign_keys and IMMEDIATE transactions), so the file is put in WAL before DBOS opens it;
    synchronous is SQLite's default, read back from DBOS's own connection below."""
    from dbos import DBOS, DBOSConfig, SetWorkflowID  # pyright: ignore[reportMissingImports]
    from dbos._dbos import _get_dbos_instance  # pyright: ignore[reportPrivateUsage, reportMissingImports]

    workflow = _dbos_workflow()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: DBOS's connections find it
    finally:
        conn.close()
    config: DBOSConfig = {
        "name": "nanoagent-bench",
        "system_database_url": f"sqlite:///{path}",
        "log_level": "WARNING",
    }
    DBOS(config=config)
    try:
        DBOS.launch()
        _DBOS_MARKS.clear()
        began = time.perf_counter()
        with SetWorkflowID(f"peer-{path.stem}"):
            done = workflow(tasks)
        seconds = time.perf_counter() - began
        marks = list(_DBOS_MARKS)
        engine: Any = _get_dbos_instance()._sys_db.engine  # pyright: ignore[reportPrivateUsage]
        with engine.connect() as db:
            mode = db.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = db.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        DBOS.destroy(destroy_registry=False)
    if done != tasks or len(marks) != tasks:
        raise RuntimeError(f"DBOS workflow returned {done} after {len(marks)} steps")
    settings = f"journal_mode={mode}, synchronous={_sync_name(sync)}"
    return PeerSample(tasks, tasks, seconds, _intervals(began, marks), settings)


TRIALS: dict[str, Callable[[Path, int], PeerSample]] = {
    FLOOR: floor_trial,
    NANOAGENT: nanoagent_trial,
    LANGGRAPH: langgraph_trial,
    LANGGRAPH_ASYNC: langgraph_async_trial,
    DBOS_NAME: dbos_trial,
}


def trial(name: str, path: Path, tasks: int) -> PeerSample:
    return TRIALS[name](path, tasks)


# -- the section ------------------------------------------------------------------------------


def _cell(stat: Stat, scale: float = 1.0) -> str:
    return f"{fmt(stat.median * scale)} ({fmt(stat.low * scale)}-{fmt(stat.high * scale)})"


def run(cfg: Config, workdir: Path) -> SectionResult:
    began = time.perf_counter()
    title = f"6. Peers at synchronous FULL: one run of {cfg.peer_tasks:,} tasks, 200-byte results"
    headers = [
        "system",
        "tasks/s",
        "p50 step (ms)",
        "p99 step (ms)",
        "steps per task",
        "nanoagent / this (tasks/s)",
        "this / floor (tasks/s)",
    ]
    goal_what = "6. nanoagent at FULL vs LangGraph (SqliteSaver)"
    goal_target = ">= 3x LangGraph's tasks/s, p99 step <= LangGraph's"
    reason = missing()
    if reason is not None:
        return SectionResult(
            title=title,
            headers=headers,
            rows=[[name, reason] for name in SYSTEMS[2:]],
            goals=[Goal(goal_what, goal_target, reason, None)],
            notes=[reason],
            seconds=time.perf_counter() - began,
        )
    workdir.mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[PeerSample]] = {name: [] for name in SYSTEMS}
    for number in range(cfg.peer_trials):
        # rotate the order, so that no system always runs first (or right after another)
        order = SYSTEMS[number % len(SYSTEMS) :] + SYSTEMS[: number % len(SYSTEMS)]
        for name in order:
            path = workdir / f"t{number}-{SYSTEMS.index(name)}.db"
            samples[name].append(trial(name, path, cfg.peer_tasks))

    def rate(name: str) -> list[float]:
        return [s.tasks_per_s for s in samples[name]]

    data: dict[str, Stat] = {}
    rows: list[list[str]] = []
    for index, name in enumerate(SYSTEMS):
        got = samples[name]
        tasks = Stat.of(rate(name))
        p50 = Stat.of(s.quantile(0.50) for s in got)
        p99 = Stat.of(s.quantile(0.99) for s in got)
        per_task = Stat.of(s.steps / s.tasks for s in got)
        vs_nano = paired_ratios(rate(NANOAGENT), rate(name))
        vs_floor = paired_ratios(rate(name), rate(FLOOR))
        key = f"peer{index}"
        data |= {
            f"{key}_tasks": tasks,
            f"{key}_p50_ms": p50.scaled(1e3),
            f"{key}_p99_ms": p99.scaled(1e3),
            f"{key}_vs_floor": vs_floor,
            f"{key}_nano_vs": vs_nano,
        }
        rows.append(
            [
                name,
                _cell(tasks),
                _cell(p50, 1e3),
                _cell(p99, 1e3),
                fmt(per_task.median),
                "1" if name == NANOAGENT else _cell(vs_nano),
                _cell(vs_floor),
            ]
        )
    nano = SYSTEMS.index(NANOAGENT)
    lang = SYSTEMS.index(LANGGRAPH)
    ratio = paired_ratios(rate(NANOAGENT), rate(LANGGRAPH))
    data["nano_vs_langgraph"] = ratio
    commits = Stat.of(s.steps / s.tasks for s in samples[NANOAGENT]).median
    nano_p99 = data[f"peer{nano}_p99_ms"].median
    lang_p99 = data[f"peer{lang}_p99_ms"].median
    goal = Goal(
        goal_what,
        goal_target,
        f"{ratio.median:.2f}x tasks/s ({fmt(data[f'peer{nano}_tasks'].median)} vs"
        f" {fmt(data[f'peer{lang}_tasks'].median)}); p99 step {fmt(nano_p99)} ms vs"
        f" {fmt(lang_p99)} ms",
        ratio.median >= 3.0 and nano_p99 <= lang_p99,
        why=f"a nanoagent task is {fmt(commits)}"
        " commits (a reflection commit every 3rd task); LangGraph's step is one checkpoint;"
        f" floor {fmt(data['peer0_tasks'].median)} tasks/s in the same trials",
    )
    settings = {name: samples[name][-1].settings for name in SYSTEMS}
    notes = [
        f"{cfg.peer_trials} trials; each trial runs every system once, in an order rotated"
        " trial by trial, each on a fresh database file. Cells: median (min-max) over the"
        " trials; ratios pair each trial's figures.",
        "A step is one durable write of each system: a commit of the loop (nanoagent), a"
        " checkpoint (LangGraph, durability='sync': written before the next step starts), a"
        " step's recorded output (DBOS), a transaction (floor). Step latency is the time from"
        " one step's completion to the next's (LangGraph: from one node's start to the next's,"
        " the checkpoint in between; its stream can hand over two steps' values back to back);"
        " p50/p99 are nearest-rank over a trial's steps, and the table gives their median over"
        " the trials.",
        "LangGraph: StateGraph with one node looping on itself; the state keeps the latest"
        " result only (no reducer); one thread; recursion_limit above the task count.",
        "DBOS: one workflow calling a @DBOS.step once per task; the file is put in WAL before"
        " DBOS opens it (DBOS sets no journal mode); DBOS.launch/destroy around each trial"
        " (not timed).",
        "Connection settings read back after each trial: "
        + "; ".join(f"{name}: {value}" for name, value in settings.items()),
    ]
    return SectionResult(
        title=title,
        headers=headers,
        rows=rows,
        goals=[goal],
        notes=notes,
        seconds=time.perf_counter() - began,
        data=data,
    )
