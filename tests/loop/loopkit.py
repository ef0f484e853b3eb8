"""Helpers shared by the loop, worker and command-line tests.

A plain module (tests/ is not a package): pytest puts this directory on ``sys.path``.

* The ``nanoagent`` command is run as the real console script of this environment, in real
  subprocesses, with an environment cleaned of ``NANOAGENT_*`` variables (:func:`cli`,
  :func:`acli`, :func:`start_cli`) wherever the claim is about the process; where it is only
  about what the command prints, its exit status or what it writes, the same argv runs in this
  process (:func:`cli_here`, :func:`acli_here`: no second interpreter's start-up).
* Waiting is always a bounded poll on a condition (:func:`wait_until`), never a bare sleep.
* :func:`check_journal` holds the "no task whose outcome committed ran twice" invariants,
  checked against the demo agent's ``log`` journal (one ``run_id:task_id:attempt`` line per
  body start).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from nanoagent_core.agents.base import Agent, ExecutionResult, Reflection
from nanoagent_core.cli import main as cli_main
from nanoagent_core.models import RunState, Task
from nanoagent_core.procinfo import process_start_time
from nanoagent_core.sqlite import SQLiteStore
from nanoagent_tui.cli import main as console_main

T = TypeVar("T")

#: The ``nanoagent`` console script of the environment running the tests.
NANOAGENT = str(Path(sys.executable).with_name("nanoagent"))

#: Event kinds of which each loop commit holds exactly one (the planning commit, each task
#: outcome, each reflection); counting them counts the commits of a run that never resumed.
COMMIT_MARKERS = frozenset({"planned", "task_done", "task_failed", "reflected"})

#: A parsed ``show --json`` document.
JSONDoc = dict[str, Any]


def clean_env(**overrides: str | None) -> dict[str, str]:
    """This process's environment without any NANOAGENT_* variable, plus ``overrides``
    (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOAGENT_")}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> Result:
    """Run ``nanoagent ARGS`` to its end (blocking)."""
    done = subprocess.run(
        [NANOAGENT, *args],
        env=dict(clean_env() if env is None else env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


async def acli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> Result:
    """Run ``nanoagent ARGS`` to its end without blocking the event loop."""
    proc = await start_cli(*args, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def start_cli(*args: str, env: Mapping[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start ``nanoagent ARGS`` with piped stdout and stderr."""
    return await asyncio.create_subprocess_exec(
        NANOAGENT,
        *args,
        env=dict(clean_env() if env is None else env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def kill_child(proc: asyncio.subprocess.Process, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to a child that may be exiting on its own at this very instant.

    Not ``proc.send_signal``: on Python 3.11 that calls ``Popen.poll()`` first, which can reap
    a child that has just exited before asyncio's child-watcher thread does; the watcher then
    finds no child and reports exit code 255 instead of the real one (seen in CI, 1 kill in a
    few hundred near the end of a run; 6 in 3,200 kills of exiting ``sleep`` children under
    load, 0 with ``os.kill``). ``os.kill`` reaps nothing: the watcher alone collects the
    status. The pid stays reserved until the watcher reaps it; only in the instant between that
    and ``returncode`` being set could the kernel hand it out again (it allocates pids in
    sequence, so not to anything in these tests).
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)


def option_args(options: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        args += ["--option", f"{key}={value}"]
    return args


# -- waiting ---------------------------------------------------------------------------------


async def gather_all(*aws: Awaitable[T]) -> list[T]:
    """Like asyncio.gather, but every awaitable runs to its end before the first failure is
    raised: nothing is left running to be cancelled at teardown (cancelling a task inside
    ``create_subprocess_exec`` can hang the event loop's close for good)."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(list[T], results)


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``probe()`` until ``ok(value)``; AssertionError with the last value after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s; last: {value!r}")
        await asyncio.sleep(interval)


async def read_run(db: str | Path, run_id: str) -> RunState:
    """The stored run, read through a fresh read-only store."""
    store = await SQLiteStore.open(db, read_only=True)
    try:
        return await store.get_run(run_id)
    finally:
        await store.close()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as dead)."""
    return process_start_time(pid) is not None


async def wait_pid_gone(pid: int, *, timeout: float) -> None:
    async def probe() -> bool:
        return pid_alive(pid)

    await wait_until(probe, lambda alive: not alive, timeout=timeout, what=f"pid {pid} gone")


class Reaper:
    """Processes a test started outside its own children (detached workers); whatever is
    still alive, with the same start time, is SIGKILLed at teardown."""

    def __init__(self) -> None:
        self._pids: dict[int, float] = {}

    def track(self, pid: int) -> None:
        started = process_start_time(pid)
        if started is not None:
            self._pids[pid] = started

    def kill_all(self) -> None:
        for pid, started in self._pids.items():
            if process_start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._pids.clear()


# -- the command in this process -------------------------------------------------------------

#: Held while a command runs in this process: it swaps the process-wide stdout, stderr,
#: environment and working directory, so in-process commands run one at a time (never one
#: that waits for another in-process command to act).
_STDOUT_LOCK = threading.Lock()

#: The fault injectors kill the process they run in: never this one.
_FAULT_PREFIX = "NANOAGENT_FAULT_"


def _swap_environ(target: Mapping[str, str]) -> dict[str, str | None]:
    """Make os.environ equal ``target``, touching only the variables that differ; returns
    what undoes it (variable -> old value, None: was unset)."""
    undo: dict[str, str | None] = {}
    for key in [k for k in os.environ if k not in target]:
        undo[key] = os.environ.pop(key)
    for key, value in target.items():
        if os.environ.get(key) != value:
            undo[key] = os.environ.get(key)
            os.environ[key] = value
    return undo


def _restore_environ(undo: Mapping[str, str | None]) -> None:
    for key, value in undo.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _exit_status(exc: SystemExit) -> int:
    """The status the interpreter would exit with for ``exc`` (argparse's exit 2 and the
    like; a message is printed to stderr, as the interpreter does, and gives 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def cli_here(
    *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> Result:
    """``nanoagent ARGS`` run to its end in this process, in a thread of its own (so that it
    installs no signal handler in the test process): the same code as the
    console script (``nanoagent_tui.cli.main``), with the environment ``env`` (default: this
    one without NANOAGENT_* variables), in the working directory ``cwd`` (default: this one),
    and stdout and stderr captured.
    Blocking; from async code use :func:`acli_here`. Not for what is about the process itself
    (signals, detaching, start-up, a closed pipe): those stay real subprocesses."""
    environment = dict(clean_env() if env is None else env)
    faults = [key for key in environment if key.startswith(_FAULT_PREFIX)]
    assert not faults, f"a fault injector would kill the test process: {faults}"
    return _in_a_thread(_cli_here, list(args), environment, cwd)


def _in_a_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a thread without an event loop that is not the main thread (where a
    command would install signal handlers): this one if it is such a thread, else a new one,
    waited for (blocking)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if threading.current_thread() is not threading.main_thread():
            return fn(*args)
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn(*args))
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="nanoagent-here")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _cli_here(argv: list[str], environment: Mapping[str, str], cwd: str | Path | None) -> Result:
    # encoded as a process's UTF-8 stdout and stderr encode (strictly: text a real stream
    # could not write fails here too), decoded as acli decodes
    out, err = _Captured(), _Captured()
    logger = logging.getLogger("nanoagent_core")
    with _STDOUT_LOCK:
        saved_logger = (list(logger.handlers), logger.level, logger.propagate)
        saved_cwd = os.getcwd()
        undo = _swap_environ(environment)
        try:
            if cwd is not None:
                os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = console_main(argv)
                except SystemExit as exc:
                    code = _exit_status(exc)
        finally:
            os.chdir(saved_cwd)
            _restore_environ(undo)
            handlers, level, propagate = saved_logger
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
    return Result(code, out.text(), err.text())


class _Captured(io.TextIOWrapper):
    """A text stream encoding to UTF-8 bytes in memory."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)

    def text(self) -> str:
        self.flush()
        buffer = self.buffer
        assert isinstance(buffer, io.BytesIO)
        return buffer.getvalue().decode()


async def acli_here(
    *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> Result:
    """:func:`cli_here` without blocking the event loop."""
    return await asyncio.to_thread(cli_here, *args, env=env, cwd=cwd)


# -- show --json -----------------------------------------------------------------------------


def show_json(db: str | Path, run_id: str) -> JSONDoc:
    """``nanoagent show RUN_ID --json``, run in this process (the same code as the command,
    without a second interpreter's start-up). Blocking; from async code use
    :func:`ashow_json`."""
    return _in_a_thread(_show_json, db, run_id)


def _show_json(db: str | Path, run_id: str) -> JSONDoc:
    buffer = io.StringIO()
    with _STDOUT_LOCK, contextlib.redirect_stdout(buffer):
        code = cli_main(["show", run_id, "--json", "--db", str(db)])
    assert code == 0, f"show {run_id} exited {code}"
    doc: JSONDoc = json.loads(buffer.getvalue())
    return doc


async def ashow_json(db: str | Path, run_id: str) -> JSONDoc:
    return await asyncio.to_thread(show_json, db, run_id)


def final_view(doc: JSONDoc) -> JSONDoc:
    """What must be identical between an interrupted-and-resumed run and a clean one: tasks
    (every field but attempts), results and result."""
    return {
        "tasks": [{k: v for k, v in task.items() if k != "attempts"} for task in doc["tasks"]],
        "results": doc["results"],
        "result": doc["result"],
    }


def attempts_by_task(doc: JSONDoc) -> dict[str, int]:
    return {task["id"]: task["attempts"] for task in doc["tasks"]}


def commit_count(doc: JSONDoc) -> int:
    """Commits of the loop in a run that never resumed (see COMMIT_MARKERS)."""
    return sum(event["kind"] in COMMIT_MARKERS for event in doc["events"])


def expected_attempts(clean: JSONDoc, crashed: JSONDoc | None) -> dict[str, int]:
    """Each task's attempts after one crash (``crashed``: the run as the killed worker left
    it) and a resume: as in the clean run, except the task at a crashed executing position,
    which the resumed worker starts again under the next attempt number (``n + 1`` for the
    ``n`` it had), so it has at least that many."""
    expected = attempts_by_task(clean)
    if crashed is None or crashed["status"] != "crashed" or crashed["phase"] != "executing":
        return expected
    current = {task["id"]: task for task in crashed["tasks"]}.get(crashed["current_task_id"])
    if current is not None and current["status"] == "pending":
        expected[current["id"]] = max(expected[current["id"]], current["attempts"] + 1)
    return expected


def assert_same_final(
    resumed: JSONDoc, clean: JSONDoc, context: str = "", *, crashed: JSONDoc | None = None
) -> None:
    """Same final tasks, results and result as ``clean``; the exact attempts of every task
    (see expected_attempts) when ``crashed`` (the run as the killed worker left it) is given,
    else at least the clean run's."""
    assert resumed["status"] == "completed", f"{context}: {resumed['status']} {resumed['error']}"
    assert final_view(resumed) == final_view(clean), context
    if crashed is not None:
        assert attempts_by_task(resumed) == expected_attempts(clean, crashed), context
        return
    clean_attempts = attempts_by_task(clean)
    for task_id, attempts in attempts_by_task(resumed).items():
        assert attempts >= clean_attempts[task_id], (context, task_id)


# -- the body-start journal ------------------------------------------------------------------


def read_journal(path: str | Path, run_id: str) -> list[tuple[str, int]]:
    """(task_id, attempt) of each body start of ``run_id``, in order."""
    starts: list[tuple[str, int]] = []
    file = Path(path)
    if not file.exists():
        return starts
    for line in file.read_text().splitlines():
        if not line:
            continue
        run, task_id, attempt = line.split(":")
        if run == run_id:
            starts.append((task_id, int(attempt)))
    return starts


def check_journal(doc: JSONDoc, starts: Sequence[tuple[str, int]], context: str = "") -> None:
    """The at-least-once / never-after-commit invariants of a finished run.

    * every attempt number of a task is announced (task_started) once, and started its
      body at most once;
    * every attempt whose outcome committed (task_done or task_failed) started its body
      exactly once, and was announced (task_started committed) before;
    * a task that is done started no body after its done attempt, and no later attempt;
    * an attempt cut short by a crash may have started its body once or not at all (a kill
      between the start's commit and the body's first line), never twice.
    """
    events = doc["events"]
    announcements = Counter(
        (e["data"]["task_id"], e["data"]["attempt"]) for e in events if e["kind"] == "task_started"
    )
    twice = {key: n for key, n in announcements.items() if n > 1}
    assert not twice, f"{context}: attempt numbers started twice: {twice}"
    announced = set(announcements)
    outcomes: dict[tuple[str, int], str] = {}
    done_attempt: dict[str, int] = {}
    for event in events:
        if event["kind"] in ("task_done", "task_failed"):
            key = (event["data"]["task_id"], event["data"]["attempt"])
            assert key not in outcomes, f"{context}: outcome of {key} committed twice"
            outcomes[key] = event["kind"]
            if event["kind"] == "task_done":
                assert key[0] not in done_attempt, f"{context}: {key[0]} done twice"
                done_attempt[key[0]] = key[1]
    counts = Counter(starts)
    repeated = {key: n for key, n in counts.items() if n > 1}
    assert not repeated, f"{context}: attempt numbers whose body started twice: {repeated}"
    for key in counts:
        assert key in announced, f"{context}: body of {key} ran before its start committed"
    for key, kind in outcomes.items():
        assert counts[key] == 1, f"{context}: {kind} {key} but {counts[key]} body starts"
    for task_id, attempt in done_attempt.items():
        attempts = [a for t, a in starts if t == task_id]
        assert attempts[-1] == attempt, f"{context}: {task_id} ran after done: {attempts}"
        assert max(attempts) == attempt, f"{context}: {task_id} attempts {attempts}"
    per_task: dict[str, list[int]] = {}
    for task_id, attempt in starts:
        per_task.setdefault(task_id, []).append(attempt)
    for task_id, attempts in per_task.items():
        assert attempts == sorted(attempts), f"{context}: {task_id} attempts out of order"
    final = attempts_by_task(doc)
    for task_id, attempts in per_task.items():
        assert max(attempts) <= final[task_id], f"{context}: {task_id} ran an unrecorded attempt"


# -- a scripted agent for the in-process loop tests ------------------------------------------

Outcome = ExecutionResult | BaseException


@dataclass
class Call:
    description: str
    task_id: str
    attempts: int
    key: str
    results: dict[str, str]


ReflectFn = Callable[[int, Sequence[Task], Sequence[Task]], Reflection]
BodyHook = Callable[[Task, str], Awaitable[None]]


class _PlannerView:
    """The planner protocol names its method ``plan``, which ScriptedAgent uses for data."""

    def __init__(self, scripted: ScriptedAgent) -> None:
        self._scripted = scripted

    async def plan(self, goal: str) -> Sequence[str]:
        return await self._scripted.plan_goal(goal)


@dataclass
class ScriptedAgent:
    """Planner, executor and reflector in one object, each recording its calls.

    * ``plan``: what the planner returns;
    * ``outcomes``: per task description, the outcome of each successive attempt (an
      ExecutionResult or an exception to raise); past the script, or unscripted, an attempt
      succeeds with ``"result of DESCRIPTION"``;
    * ``reflect``: ``(call number from 1, done, pending) -> Reflection``; by default done
      exactly when nothing is pending;
    * ``before_body``: awaited at the start of every body (to block, or act on the store).
    """

    plan: list[str]
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict[str, list[Outcome]])
    reflect_fn: ReflectFn | None = None
    before_body: BodyHook | None = None
    plans: list[str] = field(default_factory=list[str])
    calls: list[Call] = field(default_factory=list[Call])
    reflections: list[tuple[list[str], list[str]]] = field(
        default_factory=list[tuple[list[str], list[str]]]
    )

    def agent(self) -> Agent:
        return Agent(name="scripted", planner=_PlannerView(self), executor=self, reflector=self)

    @property
    def executed(self) -> list[str]:
        return [call.description for call in self.calls]

    async def plan_goal(self, goal: str) -> Sequence[str]:
        self.plans.append(goal)
        return list(self.plan)

    async def execute(self, task: Task, results: Mapping[str, str], key: str) -> ExecutionResult:
        self.calls.append(Call(task.description, task.id, task.attempts, key, dict(results)))
        if self.before_body is not None:
            await self.before_body(task, key)
        script = self.outcomes.get(task.description)
        if script:
            outcome = script.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return ExecutionResult(True, f"result of {task.description}")

    async def reflect(self, goal: str, done: Sequence[Task], pending: Sequence[Task]) -> Reflection:
        self.reflections.append(([t.description for t in done], [t.description for t in pending]))
        if self.reflect_fn is not None:
            return self.reflect_fn(len(self.reflections), done, pending)
        return Reflection(done=not pending)
