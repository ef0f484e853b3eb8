"""Helpers of the dashboard tests: databases seeded through the real store, and waiting.

A plain module (tests/ is not a package): pytest puts this directory on ``sys.path``.

* Seeding goes through ``SQLiteStore``: ``create_run``, ``claim_run`` with an ``Owner``,
  ``commit_step`` with ``Step``s, exactly as a worker writes.
* A "running" run is held by a process that is alive for the whole test: pid 1 of this host
  (its pid is the same every time, so snapshots are stable). A "crashed" run is held by a
  pid that cannot exist.
* Waiting is a bounded loop on a condition (``wait_for``), never a bare sleep.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from nanoagent_core.models import (
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
    utc_now,
    validated,
)
from nanoagent_core.procinfo import host_name, process_start_time
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.cli import main as nanoagent_main
from nanoagent_tui.live import Health
from nanoagent_tui.screens.detail import DetailScreen
from nanoagent_tui.screens.runs import RunsScreen

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: The dashboard's fixed "now" in snapshots: 4 s after the last step of EVERY_STATUS.
NOW = T0 + timedelta(minutes=1, seconds=37)
#: A pid above any pid_max: never alive.
DEAD_PID = 99_999_999
#: One day: the seeded leases outlast NOW, so only a dead pid makes a run crashed.
LONG_LEASE = 86_400.0


class FakeClock:
    """The store's clock while seeding: moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def live_owner() -> Owner:
    """Pid 1 of this host: alive for as long as the test runs."""
    return Owner(host=host_name(), pid=1, pid_started=process_start_time(1) or 0.0)


def dead_owner() -> Owner:
    return Owner(host=host_name(), pid=DEAD_PID, pid_started=1234.0)


def demo_tasks(count: int, goal: str) -> list[Task]:
    words = ("Survey", "Outline", "Draft", "Check", "Measure", "Compare")
    return [
        Task(id=f"t{n}", description=f"Step {n}: {words[n % len(words)]} {goal}", seq=n)
        for n in range(1, count + 1)
    ]


@dataclass(frozen=True)
class Seed:
    run_id: str
    goal: str
    tasks: int = 5
    done: int = 2  #: tasks finished before the run ends up as it is
    dead: bool = False  #: claimed by a worker that is gone (crashed); else by a live one
    status: RunStatus | None = None  #: None: still running
    abort: bool = False  #: request an abort (a running run then shows aborting)
    failing: bool = False  #: the next task fails every attempt (status FAILED)
    options: tuple[tuple[str, str], ...] = (("tasks", "5"), ("delay", "0.05"), ("followups", "0"))
    max_iterations: int = 20


async def seed_run(store: SQLiteStore, clock: FakeClock, seed: Seed) -> RunState:
    """Write ``seed`` through the store as a worker would: claim, plan, tasks, end."""
    await store.create_run(
        validated(
            RunState,
            run_id=seed.run_id,
            goal=seed.goal,
            max_iterations=seed.max_iterations,
            agent="demo",
            agent_options=dict(seed.options),
            lease_expires_at=clock() + timedelta(seconds=10),
        )
    )
    clock.advance(1)
    claimed = await store.claim_run(
        seed.run_id,
        dead_owner() if seed.dead else live_owner(),
        expected_epoch=0,
        lease_seconds=LONG_LEASE,
    )
    epoch = claimed.epoch
    tasks = demo_tasks(seed.tasks, seed.goal)
    first = tasks[0].model_copy(update={"attempts": 1})
    clock.advance(1)
    planned = NewEvent(
        kind=EventKind.PLANNED,
        data={"tasks": [{"id": t.id, "description": t.description} for t in tasks]},
    )
    run = await store.commit_step(
        seed.run_id,
        Step(
            phase=Phase.EXECUTING,
            iteration=1,
            current_task_id=first.id,
            tasks=(first, *tasks[1:]),
            events=(planned, _started(first, 1)),
        ),
        epoch=epoch,
    )
    for index in range(min(seed.done, seed.tasks)):
        seconds = 1.0 + 0.4 * (index % 4)
        clock.advance(seconds)
        task = tasks[index].model_copy(update={"attempts": 1})
        result = (
            f"step {index + 1} finished: {' '.join(['alpha', 'bravo', 'cedar'][: 1 + index % 3])}"
        )
        done = task.model_copy(update={"status": TaskStatus.DONE, "result": result})
        changed: list[Task] = [done]
        events = [
            NewEvent(
                kind=EventKind.TASK_DONE,
                data={"task_id": task.id, "attempt": 1, "iteration": index + 1,
                      "seconds": seconds, "result": result},
            )
        ]  # fmt: skip
        position = Step(phase=Phase.REFLECTING, iteration=index + 1)
        if index + 1 < seed.tasks:
            following = tasks[index + 1].model_copy(update={"attempts": 1})
            changed.append(following)
            events.append(_started(following, index + 2))
            position = Step(
                phase=Phase.EXECUTING, iteration=index + 2, current_task_id=following.id
            )
        run = await store.commit_step(
            seed.run_id,
            position.model_copy(
                update={"tasks": tuple(changed), "results": {task.id: result},
                        "events": tuple(events)}
            ),
            epoch=epoch,
        )  # fmt: skip
    clock.advance(2)
    if seed.failing:
        run = await _fail(store, clock, seed, run, epoch)
    elif seed.status is RunStatus.COMPLETED:
        result = f"Completed {seed.done} task(s) of {seed.goal}"
        run = await store.commit_step(
            seed.run_id,
            Step(
                phase=Phase.DONE,
                iteration=run.iteration,
                status=RunStatus.COMPLETED,
                result=result,
                events=(NewEvent(kind=EventKind.RUN_COMPLETED, data={"reason": "reflection"}),),
            ),
            epoch=epoch,
        )
    elif seed.status in (RunStatus.INTERRUPTED, RunStatus.ABORTED):
        where = f"{run.phase} (iteration {run.iteration}, task {run.current_task_id})"
        stopped = (
            "interrupted by a signal"
            if seed.status is RunStatus.INTERRUPTED
            else ("aborted on request")
        )
        kind = (
            EventKind.RUN_INTERRUPTED
            if seed.status is RunStatus.INTERRUPTED
            else EventKind.RUN_ABORTED
        )
        run = await store.commit_step(
            seed.run_id,
            Step(
                phase=run.phase,
                iteration=run.iteration,
                current_task_id=run.current_task_id,
                status=seed.status,
                error=f"{stopped} during {where}",
                events=(NewEvent(kind=kind, data={"reason": f"{stopped} during {where}"}),),
            ),
            epoch=epoch,
        )
    if seed.abort:
        clock.advance(1)
        run = await store.request_abort(seed.run_id)
    return run


def _started(task: Task, iteration: int) -> NewEvent:
    return NewEvent(
        kind=EventKind.TASK_STARTED,
        data={"task_id": task.id, "attempt": task.attempts, "iteration": iteration,
              "description": task.description},
    )  # fmt: skip


async def _fail(
    store: SQLiteStore, clock: FakeClock, seed: Seed, run: RunState, epoch: int
) -> RunState:
    task_id = run.current_task_id or "t1"
    tasks = {t.id: t for t in await store.get_all_tasks(seed.run_id)}
    task = tasks[task_id]
    for attempt in (1, 2, 3):
        clock.advance(0.5)
        error = f"step {task_id[1:]}: connection refused by the archive (attempt {attempt})"
        task = task.model_copy(
            update={
                "attempts": attempt,
                "failures": attempt,
                "error": error,
                "status": TaskStatus.FAILED if attempt == 3 else TaskStatus.PENDING,
            }
        )
        event = NewEvent(
            kind=EventKind.TASK_FAILED,
            data={"task_id": task_id, "attempt": attempt, "iteration": run.iteration,
                  "seconds": 0.5, "error": error, "will_retry": attempt < 3},
        )  # fmt: skip
        if attempt < 3:
            run = await store.commit_step(
                seed.run_id,
                Step(
                    phase=Phase.EXECUTING,
                    iteration=run.iteration,
                    current_task_id=task_id,
                    tasks=(task,),
                    events=(event,),
                ),
                epoch=epoch,
            )
            continue
        message = f"task {task_id} failed 3 attempts in a row: {error}"
        run = await store.commit_step(
            seed.run_id,
            Step(
                phase=Phase.EXECUTING,
                iteration=run.iteration,
                current_task_id=task_id,
                tasks=(task,),
                status=RunStatus.FAILED,
                error=message,
                events=(event, NewEvent(kind=EventKind.RUN_FAILED, data={"error": message})),
            ),
            epoch=epoch,
        )
    return run


#: One run of every shown status (running, aborting, crashed, interrupted, completed,
#: failed, aborted), oldest activity first.
EVERY_STATUS = (
    Seed("cmp-7c1e2a", "Summarise the release notes", tasks=3, done=3,
         status=RunStatus.COMPLETED),
    Seed("abt-51d0e9", "Benchmark three SQLite journal modes", tasks=4, done=1,
         status=RunStatus.ABORTED),
    Seed("int-9a44f0", "Translate the user guide into French", tasks=6, done=2,
         status=RunStatus.INTERRUPTED),
    Seed("fail-3be1c7", "Import the customer archive [2019-2024]", tasks=5, done=2,
         failing=True),
    Seed("crash-e02d5b", "Draft the database migration plan", tasks=8, done=3,
         dead=True),
    Seed("stop-44aa10", "Survey every open issue in the tracker and triage it", tasks=12,
         done=4, abort=True),
    Seed("run-b7f3c9", "Write a field guide to durable agent loops", tasks=6, done=2),
)  # fmt: skip


async def _seed(path: Path, seeds: tuple[Seed, ...]) -> None:
    clock = FakeClock()
    store = await SQLiteStore.open(path, clock=clock)
    try:
        for seed in seeds:
            await seed_run(store, clock, seed)
            clock.advance(7)
    finally:
        await store.close()


#: Databases seeded in this process, by their seeds: the clock is fake, so seeding the same
#: seeds again writes the same runs, steps and events.
_SEEDED: dict[tuple[Seed, ...], Path] = {}


def _seeded_dir() -> Path:
    made = Path(tempfile.mkdtemp(prefix="nanoagent-tuikit-"))
    atexit.register(shutil.rmtree, made, True)
    return made


_SEEDED_DIR: list[Path] = []


async def seed_database(
    path: Path, seeds: tuple[Seed, ...] = EVERY_STATUS, *, fresh: bool = False
) -> None:
    """``seeds`` written through the store into a new database at ``path``. Seeded once per
    process and copied (into place at once: a dashboard watching ``path`` sees no database,
    then the whole one), unless ``fresh`` (written where it is, step by step, for a test
    that watches a database being made) or ``path`` exists already (more runs added)."""
    if fresh or path.exists():
        await _seed(path, seeds)
        return
    cached = _SEEDED.get(seeds)
    if cached is None:
        if not _SEEDED_DIR:
            _SEEDED_DIR.append(_seeded_dir())
        cached = _SEEDED_DIR[0] / f"{len(_SEEDED)}.db"
        await _seed(cached, seeds)
        leftovers = [p.name for p in cached.parent.glob(f"{cached.name}-*")]
        assert not leftovers, f"the store left {leftovers} after closing"
        _SEEDED[seeds] = cached
    copying = path.with_name(f".{path.name}.copying")
    shutil.copyfile(cached, copying)
    os.replace(copying, path)


async def seed_live(path: Path, seeds: tuple[Seed, ...]) -> None:
    """Seed with the real clock (for tests with real workers)."""
    clock = FakeClock(utc_now() - timedelta(minutes=1))
    store = await SQLiteStore.open(path, clock=clock)
    try:
        for seed in seeds:
            await seed_run(store, clock, seed)
    finally:
        await store.close()


@dataclass(frozen=True)
class Ran:
    """What a ``nanoagent`` command did: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


_CLI_LOCK = threading.Lock()


def nanoagent(*args: str) -> Ran:
    """``nanoagent ARGS`` run in this process: the console script's own ``main`` (the same
    code, without a second interpreter's start-up), stdout and stderr captured under a lock
    (they are the process's). For a claim about what a command prints, exits with or writes;
    a claim about the process itself keeps a real subprocess. Blocking: from async code use
    :func:`anano`."""
    out, err = io.StringIO(), io.StringIO()
    with _CLI_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = nanoagent_main(list(args))
        except SystemExit as exc:  # argparse's --help and bad usage
            code = exc.code if isinstance(exc.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())


async def anano(*args: str) -> Ran:
    """:func:`nanoagent` from async code: in a thread (a command runs its own event loop)."""
    return await asyncio.to_thread(nanoagent, *args)


def snapshot_app(location: str | Path) -> DashboardApp:
    """The app as snapshot tests build it: fixed now, no animation, no blink."""
    return DashboardApp(str(location), clock=lambda: NOW, animate=False)


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], *, timeout: float = 60.0, what: str = ""
) -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")
        await pilot.pause(0.05)


async def loaded(pilot: Pilot[Any]) -> None:
    """Wait until the runs screen shows what the database holds."""
    app = pilot.app
    assert isinstance(app, DashboardApp)
    await wait_for(
        pilot,
        lambda: app.updates > 0 and app.live.health is not Health.STARTING,
        what="the first poll",
    )
    await pilot.pause()


def plain(widget: Widget) -> str:
    """The text a Static shows (its content rendered without styles)."""
    assert isinstance(widget, Static)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def runs_screen(app: DashboardApp) -> RunsScreen:
    screens = [s for s in app.screen_stack if isinstance(s, RunsScreen)]
    assert screens, "no runs screen"
    return screens[0]


def shown_status(app: DashboardApp, run_id: str) -> str | None:
    """The status word the runs table shows for ``run_id`` (None: no such row)."""
    row = runs_screen(app).table.row(run_id)
    return None if row is None else str(getattr(row, "status"))  # noqa: B009


async def open_detail(pilot: Pilot[Any], run_id: str) -> DetailScreen:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    await loaded(pilot)
    assert runs_screen(app).table.move_to(run_id), f"no row {run_id}"
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, DetailScreen) and app.screen.detail is not None,
        what=f"the detail of {run_id}",
    )
    # settled: two idle polls after the detail arrived (nothing left to deliver, a crash
    # confirmed), then a few frames to draw it; on a loaded machine Pilot's own idle wait
    # gives up after a second, so a snapshot could catch the screen half drawn
    idle = app.live.stats.idle
    await wait_for(pilot, lambda: app.live.stats.idle >= idle + 2, what="two idle polls")
    for _ in range(3):
        await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    return screen
