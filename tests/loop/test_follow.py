"""``nanoagent show RUN --follow`` against real detached workers, on SQLite and PostgreSQL.

Each test waits on what the follower has printed (a line naming an event) or on the stored
run, never on time: a run that must stay alive while the follower is watched has long task
bodies, and is ended by the test (abort, SIGTERM, SIGKILL) once the follower has shown it is
following live. Every follower's output is compared line by line with the run's stored
events, formatted as ``run`` formats them: each event exactly once, in id order.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest
from loopkit import Reaper, acli, acli_here, option_args, start_cli
from pgkit import drop_schema, new_schema_name, usable_server, with_schema

from nanoagent_core.follow import EXIT_CRASHED, event_line
from nanoagent_core.models import Event, RunState, RunStatus
from nanoagent_core.stores import open_store

#: Task bodies that outlast any test: the run stays live until the test ends it.
SLOW = {"tasks": "3", "followups": "0", "delay": "600"}
QUICK = {"tasks": "3", "followups": "1", "delay": "0.05"}


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, db: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield db
        return
    url = usable_server()
    schema = new_schema_name()
    try:
        yield with_schema(url, schema)
    finally:
        drop_schema(url, schema)


async def stored_events(location: str, run_id: str) -> list[Event]:
    store = await open_store(location, create=False, read_only=True)
    try:
        return await store.read_events(run_id=run_id, limit=100_000)
    finally:
        await store.close()


async def stored_run(location: str, run_id: str) -> RunState:
    store = await open_store(location, create=False, read_only=True)
    try:
        return await store.get_run(run_id)
    finally:
        await store.close()


class Follower:
    """A running ``show RUN --follow``, its stdout read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, location: str, run_id: str, env: dict[str, str]) -> Follower:
        return cls(await start_cli("show", run_id, "--follow", "--db", location, env=env))

    async def until(self, word: str, timeout: float = 60.0) -> None:
        """Read lines until one contains ``word``."""
        assert self.proc.stdout is not None

        async def read() -> None:
            assert self.proc.stdout is not None
            while not any(word in line for line in self.lines):
                raw = await self.proc.stdout.readline()
                assert raw, f"the follower ended before {word!r}: {self.lines}"
                self.lines.append(raw.decode().rstrip("\n"))

        await asyncio.wait_for(read(), timeout)

    async def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """The rest of stdout, then the exit status and stderr."""
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise
        self.lines.extend(out.decode().splitlines())
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()


async def follow_here(
    location: str, run_id: str, env: dict[str, str]
) -> tuple[int, str, list[str]]:
    """``show RUN --follow`` run to its end in this process (for a follower only looked at
    once it has ended): exit status, stderr and its lines."""
    result = await acli_here("show", run_id, "--follow", "--db", location, env=env)
    return result.code, result.err, result.out.splitlines()


async def start_detached(location: str, run_id: str, options: dict[str, str], env: dict[str, str],
                         reaper: Reaper) -> int:  # fmt: skip
    """Start a run in a detached worker and return the worker's pid. ``run --detach`` returns
    once the worker has claimed the run, so the run is claimed here; a quick run may even be
    over (owner released): then the pid comes from its claim event."""
    started = await acli("run", "followed", "--detach", "--run-id", run_id, "--db", location,
                         *option_args(options), env=env)  # fmt: skip
    assert started.code == 0, started
    run = await stored_run(location, run_id)
    assert run.epoch >= 1, run
    if run.owner is not None:
        pid = run.owner.pid
    else:
        claims = [e for e in await stored_events(location, run_id) if e.kind == "run_claimed"]
        pid = int(claims[0].data["pid"])
    reaper.track(pid)
    return pid


async def assert_lines_are_the_events(location: str, run_id: str, lines: list[str]) -> None:
    """Every stored event of the run exactly once, in id order, then one closing line."""
    events = await stored_events(location, run_id)
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    assert lines[:-1] == [event_line(run_id, event) for event in events]
    assert lines[-1].startswith(f"run {run_id} ")


async def test_follow_prints_each_event_once_and_ends_with_the_completed_run(
    location: str, env: dict[str, str], reaper: Reaper
) -> None:
    await start_detached(location, "quick", QUICK, env, reaper)
    await start_detached(location, "other", QUICK, env, reaper)  # its events interleave
    code, err, lines = await follow_here(location, "quick", env)
    assert (code, err) == (0, "")
    assert lines[-1] == "run quick completed"
    await assert_lines_are_the_events(location, "quick", lines)
    assert "run_completed" in lines[-2]
    assert not any(" other " in line for line in lines)


async def test_follow_is_live_and_ends_with_an_abort(
    location: str, env: dict[str, str], reaper: Reaper
) -> None:
    await start_detached(location, "slow", SLOW, env, reaper)
    follower = await Follower.start(location, "slow", env)
    await follower.until("task_started")  # printed while the run is still running
    assert (await stored_run(location, "slow")).status is RunStatus.RUNNING
    aborted = await acli_here("abort", "slow", "--db", location, env=env)
    assert aborted.code == 0, aborted
    code, err = await follower.finish()
    assert (code, err) == (5, "")
    assert follower.lines[-1].startswith("run slow aborted")
    await assert_lines_are_the_events(location, "slow", follower.lines)


async def test_follow_ends_with_an_interrupted_run(
    location: str, env: dict[str, str], reaper: Reaper
) -> None:
    worker = await start_detached(location, "stopped", SLOW, env, reaper)
    follower = await Follower.start(location, "stopped", env)
    await follower.until("task_started")
    os.kill(worker, signal.SIGTERM)
    code, err = await follower.finish()
    assert (code, err) == (130, "")
    assert follower.lines[-1].startswith("run stopped interrupted")
    await assert_lines_are_the_events(location, "stopped", follower.lines)


async def test_follow_reports_a_sigkilled_worker_as_crashed(
    location: str, env: dict[str, str], reaper: Reaper
) -> None:
    worker = await start_detached(location, "killed", SLOW, env, reaper)
    follower = await Follower.start(location, "killed", env)
    await follower.until("task_started")
    os.kill(worker, signal.SIGKILL)
    code, err = await follower.finish()
    assert (code, err) == (EXIT_CRASHED, "")
    assert follower.lines[-1].startswith(f"run killed crashed: its worker (pid {worker} on ")
    assert "'nanoagent resume killed'" in follower.lines[-1]
    assert (await stored_run(location, "killed")).status is RunStatus.RUNNING  # untouched
    await assert_lines_are_the_events(location, "killed", follower.lines)


async def test_follow_on_a_finished_run_prints_it_all_and_exits(
    location: str, env: dict[str, str]
) -> None:
    done = await acli_here("run", "done already", "--run-id", "done", "--db", location,
                           *option_args(QUICK), env=env)  # fmt: skip
    assert done.code == 0, done
    code, err, lines = await follow_here(location, "done", env)
    assert (code, err) == (0, "")
    await assert_lines_are_the_events(location, "done", lines)
    assert lines[-1] == "run done completed"


async def test_follow_bad_input(db: str, env: dict[str, str]) -> None:
    unknown = await acli_here("show", "nobody", "--follow", "--db", db, env=env)
    assert unknown.code == 3, unknown
    assert len(unknown.err_lines) == 1
    assert unknown.out == ""
    both = await acli_here("show", "nobody", "--follow", "--json", "--db", db, env=env)
    assert both.code == 2, both
    assert len(both.err_lines) == 1
    assert "--follow" in both.err


async def test_follow_shows_control_characters_escaped(db: str, env: dict[str, str]) -> None:
    goal = "evil \x1b[2J\x1b]0;title\x07 goal \u202e"
    done = await acli_here("run", goal, "--run-id", "evil", "--db", db, *option_args(QUICK),
                           env=env)  # fmt: skip
    assert done.code == 0, done
    code, _, lines = await follow_here(db, "evil", env)
    assert code == 0
    text = "\n".join(lines)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\u202e" not in text
    assert "\\x1b[2J" in text
