"""Trust trials of the command (issue 9, items 9, 14 and 15), through the real console script.

* A closed stdout (``nanoagent run ... | head -1``) never changes a run's fate, and no command
  prints a traceback for it: a real pipe, shrunk to one page so that the output surely
  outgrows it, whose reader takes one line and closes its end.
* Bad input that used to print a traceback, leak pydantic's wording, echo a 120 KB value whole
  or be silently accepted: one plain line, exit 2.
* The demo agent can fail a run (``fail_always``), and a task's retries are spaced by the
  agent's ``retry_backoff`` (lower bounds only), in a wait that an abort cuts short.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from loopkit import (
    NANOAGENT,
    Reaper,
    ScriptedAgent,
    acli,
    acli_here,
    ashow_json,
    gather_all,
    option_args,
    read_run,
    wait_pid_gone,
    wait_until,
)

from nanoagent_core.agents.base import MAX_RETRY_WAIT, ExecutionResult
from nanoagent_core.agents.demo import make_demo_agent
from nanoagent_core.cli import EXIT_PIPE
from nanoagent_core.eventtext import describe_event
from nanoagent_core.loop import Loop
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import MAX_GOAL_CHARS, RunState, RunStatus, Task
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import Step
from nanoagent_core.sqlite import SQLiteStore

F_SETPIPE_SZ = 1031  # Linux fcntl: set a pipe's capacity
PIPE_BYTES = 4096  # the smallest capacity (one page)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="shrinks a pipe with F_SETPIPE_SZ"
)


# -- a reader that takes one line and closes its end -----------------------------------------


@dataclass(frozen=True)
class Piped:
    code: int
    first_line: bytes
    err: str


def _head_one(args: Sequence[str], env: Mapping[str, str], timeout: float = 120.0) -> Piped:
    """``nanoagent ARGS | head -1``: stdout is a real pipe of one page; this reader takes the
    first line byte by byte (nothing more; at most 200 bytes: ``list --json`` is one long
    line), closes its end, and waits for the command."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_BYTES)
    try:
        proc = subprocess.Popen(
            [NANOAGENT, *args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    line = b""
    try:
        while not line.endswith(b"\n") and len(line) < 200:
            byte = os.read(read_end, 1)
            if not byte:
                break
            line += byte
    finally:
        os.close(read_end)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return Piped(proc.returncode, line, err.decode(errors="replace"))


async def head_one(*args: str, env: Mapping[str, str]) -> Piped:
    return await asyncio.to_thread(_head_one, args, env)


@linux_only
async def test_run_piped_into_head_completes_and_exits_by_the_run(
    db: str, env: dict[str, str]
) -> None:
    # 50 tasks print well over 100 event lines: far more than the pipe holds, so the command
    # meets the closed pipe while the run is still going (before the fix: the run ended
    # "failed: BrokenPipeError", or crashed when the first event line met it)
    options = {"tasks": "50", "followups": "0", "delay": "0"}
    piped = await head_one("run", "fill the pipe " * 4, "--run-id", "piped", "--db", db,
                           *option_args(options), env=env)  # fmt: skip
    assert piped.first_line.startswith(b"run piped in "), piped
    assert "Traceback" not in piped.err, piped.err
    assert piped.err == "", piped.err
    assert piped.code == 0, piped  # the run's own exit status: it completed
    run = await read_run(db, "piped")
    assert run.status is RunStatus.COMPLETED, run.error
    assert (run.tasks_done, run.tasks_total) == (50, 50)
    doc = await ashow_json(db, "piped")
    # the premise: the event lines the command had to print outgrow the pipe many times over
    printed = sum(len(describe_event(e["kind"], e["data"])) for e in doc["events"])
    assert printed > 2 * PIPE_BYTES


async def _seed(db: str, runs: int) -> None:
    store = await SQLiteStore.open(db)
    try:
        for n in range(runs):
            goal = "a goal long enough to fill lines " * 2 if n else "g" * MAX_GOAL_CHARS
            await store.create_run(
                RunState(run_id=f"r{n:04d}", goal=goal, max_iterations=5, status=RunStatus.FAILED)
            )
    finally:
        await store.close()


@linux_only
async def test_listing_commands_piped_into_head_exit_quietly(db: str, env: dict[str, str]) -> None:
    # 300 runs: ~25 KB of list lines and ~150 KB of JSON; run r0000's goal alone is 10,000
    # characters, which show prints on its second line (and in its JSON)
    await _seed(db, 300)
    commands = {
        "list": ["list"],
        "list --json": ["list", "--json"],
        "list --limit": ["list", "--limit", "250"],
        "show": ["show", "r0000"],
        "show --json": ["show", "r0000", "--json"],
    }
    results = await gather_all(
        *(head_one(*args, "--db", db, env=env) for args in commands.values())
    )
    problems = [
        f"{name}: exit {r.code}, first line {r.first_line[:60]!r}, stderr {r.err[-300:]!r}"
        for name, r in zip(commands, results, strict=True)
        if r.code != EXIT_PIPE or r.err or not r.first_line
    ]
    assert not problems, "\n".join(problems)


async def test_commands_started_with_stdout_closed_run_quietly(
    db: str, env: dict[str, str]
) -> None:
    # `nanoagent ... >&-`: Python starts with sys.stdout None (before: AttributeError, exit 1)
    async def closed(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", 'exec "$0" "$@" >&-', NANOAGENT, *args, "--db", db, env=env,
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, err.decode()

    options = option_args({"tasks": "2", "followups": "0", "delay": "0"})
    assert await closed("run", "unheard", "--run-id", "unheard", *options) == (0, "")
    assert (await read_run(db, "unheard")).status is RunStatus.COMPLETED
    assert await closed("list", "--json") == (0, "")
    assert await closed("show", "unheard") == (0, "")


# -- bad input: one plain line, exit 2 --------------------------------------------------------


@dataclass
class Case:
    name: str
    args: list[str]
    says: str  #: a fragment the one line on stderr must hold
    codes: tuple[int, ...] = (2,)


HUGE = "x" * 120_000


def bad_input_cases(fresh: str) -> list[Case]:
    db = ["--db", fresh]
    log = str(Path(fresh).parent.parent / "a\udcffb")  # never created by a refused command
    many = [arg for n in range(51) for arg in ("--option", f"k{n}=v")]
    return [
        Case("undecodable goal", ["run", "a\udcffb", *db], "not valid UTF-8"),
        Case("undecodable option", ["run", "g", "--option", f"log={log}", *db], "UTF-8"),
        Case("undecodable option name", ["run", "g", "--option", "\udcff=1", *db], "UTF-8"),
        Case("undecodable agent", ["run", "g", "--agent", "\udcff", *db], "agent"),
        Case("huge limit", ["list", "--limit", "99999999999999999999", *db], "--limit"),
        Case("zero limit", ["list", "--limit", "0", *db], "--limit"),
        Case("negative limit", ["list", "--limit", "-1", *db], "--limit"),
        Case("limit not a number", ["list", "--limit", "all", *db], "--limit"),
        Case("zero iterations", ["run", "g", "--max-iterations", "0", *db], "--max-iterations"),
        Case("huge iterations", ["run", "g", "--max-iterations", "10001", *db], "10,000"),
        Case("undecodable --db", ["list", "--db", f"{fresh}\udcff"], "UTF-8"),
        Case("empty --db", ["run", "g", "--db", ""], "--db"),
        Case("empty --db (list)", ["list", "--db", ""], "--db"),
        Case(
            "repeated option",
            ["run", "g", "--option", "tasks=2", "--option", "tasks=3", *db],
            "given twice",
        ),
        Case("huge option value", ["run", "g", "--option", f"log={HUGE}", *db], "120,000"),
        Case("huge malformed value", ["run", "g", "--option", f"tasks={HUGE}", *db], "120,000"),
        Case("huge option without =", ["run", "g", "--option", HUGE, *db], "KEY=VALUE"),
        Case("huge option name", ["run", "g", "--option", f"{HUGE}=1", *db], "option name"),
        Case("too many options", ["run", "g", *many, *db], "at most 50"),
        Case("huge heartbeat", ["run", "g", "--heartbeat", HUGE, *db], "heartbeat"),
        Case("huge goal", ["run", HUGE, *db], "goal"),
        Case("backoff too long", ["run", "g", "--option", "backoff=61", *db], "backoff"),
        Case("backoff nan", ["run", "g", "--option", "backoff=nan", *db], "backoff"),
        Case("bad fail_always", ["run", "g", "--option", "fail_always=1,x", *db], "fail_always"),
        Case("huge fail number", ["run", "g", "--option", "fail=" + "9" * 4000, *db], "fail"),
        # a malformed PostgreSQL address: whatever the error, one line, no traceback (with its
        # locals) and no password
        Case("malformed address", ["list", "--db", "postgresql://u:s3cret@[::1"], "", codes=(1, 2)),
    ]


#: Cases also run through the console script in a process of its own (the rest run the same
#: argv in this process): undecodable bytes in its argv, a huge argument, argparse's
#: refusal, a store's refusal.
IN_A_PROCESS = {"undecodable goal", "huge goal", "zero limit", "malformed address"}


async def test_bad_input_is_one_plain_clipped_line(tmp_path: Path, env: dict[str, str]) -> None:
    fresh = tmp_path / "fresh" / "runs.db"
    cases = bad_input_cases(str(fresh))
    assert {case.name for case in cases} >= IN_A_PROCESS
    gate = asyncio.Semaphore(4)

    async def attempt(case: Case) -> tuple[int, str, str]:
        async with gate:
            run = acli if case.name in IN_A_PROCESS else acli_here
            result = await run(*case.args, env=env)
            return result.code, result.out, result.err

    results = await gather_all(*(attempt(case) for case in cases))
    problems: list[str] = []
    for case, (code, out, err) in zip(cases, results, strict=True):
        lines = err.splitlines()
        if (
            code not in case.codes
            or len(lines) != 1
            or "Traceback" in err
            or not lines[0].startswith("nanoagent: ")
            or case.says not in lines[0]
            or len(lines[0]) > 300  # echoed values are clipped
            or "Input should" in err  # pydantic's wording
            or "s3cret" in err
            or out
        ):
            problems.append(f"{case.name}: exit {code}, stderr {err[:400]!r}")
    assert not problems, "\n".join(problems)
    assert not fresh.exists()
    assert not fresh.parent.exists()
    assert not list(tmp_path.glob("a*b"))


async def test_limit_takes_that_many_runs(db: str, env: dict[str, str]) -> None:
    await _seed(db, 3)
    listed = await acli_here("list", "--limit", "2", "--db", db, env=env)
    assert listed.code == 0, listed
    assert len(listed.out.splitlines()) == 3  # header and two runs
    everything = await acli_here("list", "--db", db, env=env)
    assert len(everything.out.splitlines()) == 4


# -- failed runs and the retry backoff --------------------------------------------------------


async def test_fail_always_fails_the_run_with_exit_1(db: str, env: dict[str, str]) -> None:
    options = {"tasks": "2", "followups": "0", "delay": "0", "fail_always": "2"}
    result = await acli_here("run", "doomed", "--run-id", "doomed", "--db", db,
                        *option_args(options), env=env)  # fmt: skip
    assert result.code == 1, result
    assert "Traceback" not in result.err
    last = result.out.splitlines()[-1]
    assert last.startswith("run doomed failed: task "), last
    assert "failed 3 attempts in a row" in last
    doc = await ashow_json(db, "doomed")
    assert doc["status"] == "failed"
    assert [(t["status"], t["attempts"]) for t in doc["tasks"]] == [("done", 1), ("failed", 3)]


def test_retry_wait_doubles_and_is_capped() -> None:
    plain = make_demo_agent({})
    assert plain.retry_wait(5) == 0.0  # no backoff by default: retry at once
    agent = dataclasses.replace(plain, retry_backoff=2.0)
    assert [agent.retry_wait(n) for n in (0, 1, 2, 3)] == [0.0, 2.0, 4.0, 8.0]
    assert agent.retry_wait(10_000) == MAX_RETRY_WAIT
    assert make_demo_agent({"backoff": "1.5"}).retry_backoff == 1.5
    for bad in (-1.0, 61.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="retry_backoff"):
            dataclasses.replace(plain, retry_backoff=bad)


async def test_retries_are_spaced_by_the_backoff(db: str, env: dict[str, str]) -> None:
    backoff = 0.3
    options = {"tasks": "1", "followups": "0", "delay": "0", "fail_always": "1",
               "backoff": str(backoff)}  # fmt: skip
    result = await acli_here("run", "slow retries", "--run-id", "spaced", "--db", db,
                        *option_args(options), env=env)  # fmt: skip
    assert result.code == 1, result
    doc = await ashow_json(db, "spaced")
    starts = {e["data"]["attempt"]: e["ts"] for e in doc["events"] if e["kind"] == "task_started"}
    assert sorted(starts) == [1, 2, 3]
    at = {n: datetime.fromisoformat(ts).timestamp() for n, ts in starts.items()}
    # lower bounds only: the wait before attempt n + 1 is backoff * 2 ** (n - 1)
    assert at[2] - at[1] >= backoff - 0.002, at
    assert at[3] - at[2] >= 2 * backoff - 0.002, at
    failed = [e["data"] for e in doc["events"] if e["kind"] == "task_failed"]
    assert [f.get("retry_in") for f in failed] == [backoff, 2 * backoff, None]


async def _failure_announced(db: str, run_id: str) -> bool:
    with contextlib.suppress(Exception):
        doc = await ashow_json(db, run_id)
        return any(e["kind"] == "task_failed" for e in doc["events"])
    return False


async def test_abort_cuts_the_backoff_wait_short(db: str, env: dict[str, str]) -> None:
    # a 60 s wait before the retry; the abort is seen within a heartbeat (0.2 s) and cancels
    # the wait: the run ends aborted long before the wait would have
    options = {"tasks": "1", "followups": "0", "delay": "0", "fail": "1", "backoff": "60"}
    run = asyncio.ensure_future(
        acli(
            "run",
            "wait for it",
            "--run-id",
            "waiting",
            "--heartbeat",
            "0.2",
            "--db",
            db,
            *option_args(options),
            env=env,
            timeout=50,
        )
    )
    try:

        async def probe() -> bool:
            return await _failure_announced(db, "waiting")

        await wait_until(probe, bool, timeout=30, interval=0.1, what="first attempt failed")
        aborted = await acli_here("abort", "waiting", "--db", db, env=env)
        assert aborted.code == 0, aborted
    finally:
        result = await run
    assert result.code == 5, result
    stored = await read_run(db, "waiting")
    assert stored.status is RunStatus.ABORTED
    doc = await ashow_json(db, "waiting")
    assert [t["attempts"] for t in doc["tasks"]] == [1]  # the retry never started


async def test_a_worker_killed_during_the_wait_resumes_with_the_retry(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    options = {"tasks": "2", "followups": "0", "delay": "0", "fail": "1", "backoff": "60"}
    started = await acli("run", "killed while waiting", "--run-id", "killed", "--detach",
                         "--db", db, *option_args(options), env=env)  # fmt: skip
    assert started.code == 0, started

    async def probe() -> RunState:
        return await read_run(db, "killed")

    run = await wait_until(probe, lambda r: r.owner is not None, timeout=30, what="claimed")
    assert run.owner is not None
    reaper.track(run.owner.pid)

    async def failed() -> bool:
        return await _failure_announced(db, "killed")

    await wait_until(failed, bool, timeout=30, interval=0.1, what="first attempt failed")
    os.kill(run.owner.pid, signal.SIGKILL)
    await wait_pid_gone(run.owner.pid, timeout=30)
    waiting = await read_run(db, "killed")
    assert (waiting.phase.value, waiting.current_task_id) == ("executing", None)
    resumed = await acli_here("resume", "killed", "--db", db, env=env)
    assert resumed.code == 0, resumed
    doc = await ashow_json(db, "killed")
    assert doc["status"] == "completed"
    assert [(t["status"], t["attempts"]) for t in doc["tasks"]] == [("done", 2), ("done", 1)]


# -- the backoff in the loop itself (one process, in-memory store) ---------------------------


async def test_loop_commits_the_failure_then_waits_then_starts_the_retry() -> None:
    backoff = 0.05
    body_starts: list[float] = []

    async def note_start(task: Task, key: str) -> None:
        body_starts.append(time.monotonic())

    failure = ExecutionResult(False, "no luck")
    scripted = ScriptedAgent(
        plan=["flaky"], outcomes={"flaky": [failure, failure]}, before_body=note_start
    )
    agent = dataclasses.replace(scripted.agent(), retry_backoff=backoff)
    store = MemoryStore()
    await store.create_run(RunState(run_id="m", goal="g", max_iterations=10, agent="scripted"))
    run = await store.claim_run("m", current_owner(), expected_epoch=0, lease_seconds=60)
    commits: list[tuple[str, str | None, list[str]]] = []

    def on_step(state: RunState, step: Step) -> None:
        commits.append((step.phase.value, step.current_task_id, [e.kind for e in step.events]))

    final = await Loop(store, run, agent, on_step=on_step).run()
    assert final.status is RunStatus.COMPLETED
    failed_at = [i for i, c in enumerate(commits) if "task_failed" in c[2]]
    assert len(failed_at) == 2
    for i in failed_at:
        # the failure commits alone, with no task in flight; the retry's start commits next
        assert commits[i][:2] == ("executing", None), commits
        assert "task_started" in commits[i + 1][2], commits
    assert len(body_starts) == 3
    assert body_starts[1] - body_starts[0] >= backoff
    assert body_starts[2] - body_starts[1] >= 2 * backoff


async def test_cancelling_the_loop_cuts_the_wait_and_leaves_the_failure_recorded() -> None:
    scripted = ScriptedAgent(plan=["flaky"], outcomes={"flaky": [ExecutionResult(False, "no")]})
    agent = dataclasses.replace(scripted.agent(), retry_backoff=60.0)
    store = MemoryStore()
    await store.create_run(RunState(run_id="c", goal="g", max_iterations=10, agent="scripted"))
    run = await store.claim_run("c", current_owner(), expected_epoch=0, lease_seconds=60)
    failed = asyncio.Event()

    def on_step(state: RunState, step: Step) -> None:
        if any(e.kind == "task_failed" for e in step.events):
            failed.set()

    task = asyncio.ensure_future(Loop(store, run, agent, on_step=on_step).run())
    await asyncio.wait_for(failed.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)  # a 60 s wait: only the cancellation ends it
    stored = await store.get_run("c")
    assert (stored.phase.value, stored.current_task_id) == ("executing", None)
    (flaky,) = await store.get_all_tasks("c")
    assert (flaky.attempts, flaky.failures, flaky.status.value) == (1, 1, "pending")
