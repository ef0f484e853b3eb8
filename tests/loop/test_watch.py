"""``nanoagent watch`` against real workers, on SQLite and PostgreSQL.

A watch subprocess runs ``--exec`` of a tiny shell script that appends the environment it
receives to a file. Runs fail (the demo agent's ``fail_always``) or complete through the
command run in this process, or crash: a ``nanoagent run`` process SIGKILLs itself right after
its first commit, leaving the run stored running with its worker gone. The test waits on the
script's file (never on time), restarts the watch in between, and checks that each transition
into crashed or failed reached the script exactly once and nothing else did. The watches stay
real processes: they install signal handlers, are stopped by SIGTERM or SIGINT and run their
commands with stdout on their stderr.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopkit import NANOAGENT, acli, acli_here, kill_child, option_args, start_cli, wait_until
from pgkit import drop_schema, new_schema_name, usable_server, with_schema

from nanoagent_core.models import RunState
from nanoagent_core.procinfo import owner_alive
from nanoagent_core.stores import open_store
from nanoagent_core.worker import FAULT_KILL_AFTER_COMMIT

QUICK = {"tasks": "1", "followups": "0", "delay": "0"}
#: Every attempt of the only task fails: the run fails after three attempts.
FAILING = {**QUICK, "fail_always": "1"}

#: Appends what it receives; a goal with ``hang`` then hangs, one with ``bad`` exits 3.
HOOK = """#!/bin/sh
printf '%s|%s|%s|%s\\n' "$NANOAGENT_RUN_ID" "$NANOAGENT_STATUS" "$NANOAGENT_REASON" \\
    "$NANOAGENT_GOAL" >> "$HOOK_OUT"
case "$NANOAGENT_GOAL" in
    *hang*) exec sleep 600 ;;
    *bad*) exit 3 ;;
esac
"""


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


@pytest.fixture
def wenv(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The commands' environment, with the hook's output file."""
    return {
        **env,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "HOOK_OUT": str(tmp_path / "hook.out"),
    }


@pytest.fixture
def hook(tmp_path: Path) -> Path:
    path = tmp_path / "hook.sh"
    path.write_text(HOOK)
    path.chmod(0o755)
    return path


def hook_lines(wenv: dict[str, str]) -> list[tuple[str, ...]]:
    path = Path(wenv["HOOK_OUT"])
    if not path.exists():
        return []
    return [tuple(line.split("|", 3)) for line in path.read_text().splitlines()]


async def wait_hook(
    wenv: dict[str, str], expected: Counter[tuple[str, str]], what: str
) -> list[tuple[str, ...]]:
    """Wait until the hook received at least ``expected`` (run, status) pairs."""

    async def probe() -> Counter[tuple[str, str]]:
        return Counter((line[0], line[1]) for line in hook_lines(wenv))

    await wait_until(probe, lambda got: got >= expected, timeout=90, interval=0.1, what=what)
    return hook_lines(wenv)


async def stored_run(location: str, run_id: str) -> RunState:
    store = await open_store(location, create=False, read_only=True)
    try:
        return await store.get_run(run_id)
    finally:
        await store.close()


async def fail_run(location: str, run_id: str, goal: str, wenv: dict[str, str]) -> None:
    result = await acli_here("run", goal, "--run-id", run_id, "--db", location,
                             *option_args(FAILING), env=wenv)  # fmt: skip
    assert result.code == 1, result  # three failed attempts in a row: the run failed


async def complete_run(location: str, run_id: str, wenv: dict[str, str]) -> None:
    result = await acli_here("run", "finishes", "--run-id", run_id, "--db", location,
                             *option_args(QUICK), env=wenv)  # fmt: skip
    assert result.code == 0, result


async def crash_run(location: str, run_id: str, wenv: dict[str, str]) -> None:
    """A ``nanoagent run`` that SIGKILLs itself right after its first commit (the plan): the
    run stays stored running, its worker gone."""
    faulty = {**wenv, FAULT_KILL_AFTER_COMMIT: "1"}
    killed = await acli("run", f"{run_id} goal", "--run-id", run_id, "--db", location,
                        *option_args(QUICK), env=faulty)  # fmt: skip
    assert killed.code == -signal.SIGKILL, killed
    run = await stored_run(location, run_id)
    assert (run.status.value, run.owner is not None) == ("running", True), run


class Watch:
    """A running ``nanoagent watch``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, location: str, state: Path, wenv: dict[str, str], *extra: str) -> Watch:
        before = state.stat().st_mtime_ns if state.exists() else None
        proc = await start_cli("watch", "--db", location, "--state", str(state), *extra,
                               env=wenv)  # fmt: skip
        watch = cls(proc)
        if before is None:  # a first start writes the state file once it has looked

            async def probe() -> bool:
                return state.exists() or proc.returncode is not None

            await wait_until(probe, bool, timeout=60, what="the state file")
            assert proc.returncode is None, await proc.communicate()
        return watch

    async def stop(self, sig: int = signal.SIGTERM) -> tuple[int, list[str], str]:
        kill_child(self.proc, sig)
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise
        assert self.proc.returncode is not None
        return self.proc.returncode, out.decode().splitlines(), err.decode()


def printed(lines: list[str]) -> Counter[tuple[str, str]]:
    """(run, status) of each printed line ``HH:MM:SS RUN STATUS: ...``."""
    pairs: Counter[tuple[str, str]] = Counter()
    for line in lines:
        _stamp, run_id, status, *_ = line.split(" ")
        pairs[(run_id, status.rstrip(":"))] += 1
    return pairs


async def test_each_transition_reaches_the_command_exactly_once_across_restarts(
    location: str, wenv: dict[str, str], hook: Path, tmp_path: Path
) -> None:
    state = tmp_path / "watch-state.json"
    # before the first start: neither is reported (a first start reports nothing old)
    await fail_run(location, "old-failed", "failed before", wenv)
    await crash_run(location, "old-crash", wenv)

    async def old_crash_gone() -> bool:
        run = await stored_run(location, "old-crash")
        assert run.owner is not None
        return owner_alive(run.owner) is False

    await wait_until(old_crash_gone, bool, timeout=60, what="old-crash's worker gone")

    first = await Watch.start(location, state, wenv, "--exec", str(hook))
    assert state.stat().st_mode & 0o777 == 0o600
    await complete_run(location, "done", wenv)  # not watched
    await fail_run(location, "fail1", "goal with \x1b[31m escape", wenv)
    await crash_run(location, "crash1", wenv)
    expected = Counter({("fail1", "failed"): 1, ("crash1", "crashed"): 1})
    lines = await wait_hook(wenv, expected, "fail1 and crash1 reported")
    code, out1, err = await first.stop()
    assert (code, err) == (0, "")

    # while the watch is down: a failure, a run that fails twice (resumed in between), a crash
    await fail_run(location, "fail2", "fails while down", wenv)
    await fail_run(location, "twice", "fails twice while down", wenv)
    resumed = await acli_here("resume", "twice", "--db", location, env=wenv)
    assert resumed.code == 1, resumed
    await crash_run(location, "crash2", wenv)

    second = await Watch.start(location, state, wenv, "--exec", str(hook))
    expected += Counter({("fail2", "failed"): 1, ("twice", "failed"): 2, ("crash2", "crashed"): 1})
    await wait_hook(wenv, expected, "what happened while the watch was down")
    # a live transition after the restart: by then the second watch has looked several times
    await fail_run(location, "fail3", "fails after the restart", wenv)
    expected += Counter({("fail3", "failed"): 1})
    lines = await wait_hook(wenv, expected, "fail3 reported")
    code, out2, err = await second.stop(signal.SIGINT)
    assert (code, err) == (0, "")

    got = Counter((line[0], line[1]) for line in lines)
    assert got == expected  # each exactly once; nothing old, nothing completed
    assert printed(out1 + out2) == expected
    by_run = {line[0]: line for line in lines}
    assert by_run["fail1"][2].startswith("task ")  # the reason: the run's error
    assert "simulated failure on every attempt" in by_run["fail1"][2]
    assert by_run["fail1"][3] == "goal with \\x1b[31m escape"  # control characters visible
    assert "\x1b" not in "".join(out1 + out2)
    assert any("\\x1b[31m" in line for line in out1)
    assert "is gone" in by_run["crash1"][2]
    assert by_run["crash2"][3] == "crash2 goal"


async def test_all_reports_what_is_already_there_on_a_first_start(
    location: str, wenv: dict[str, str], hook: Path, tmp_path: Path
) -> None:
    await fail_run(location, "old-failed", "failed before", wenv)
    await complete_run(location, "done", wenv)
    state = tmp_path / "s.json"
    watch = await Watch.start(location, state, wenv, "--all", "--status", "failed",
                              "--exec", str(hook))  # fmt: skip
    await crash_run(location, "crash1", wenv)  # not watched: --status failed
    await fail_run(location, "fail1", "fails", wenv)
    expected = Counter({("old-failed", "failed"): 1, ("fail1", "failed"): 1})
    lines = await wait_hook(wenv, expected, "old-failed and fail1")
    code, out, err = await watch.stop()
    assert (code, err) == (0, "")
    assert Counter((line[0], line[1]) for line in lines) == expected
    assert printed(out) == expected


async def test_a_failing_or_hung_command_is_one_line_and_watching_goes_on(
    db: str, wenv: dict[str, str], hook: Path, tmp_path: Path
) -> None:
    await complete_run(db, "first", wenv)  # the database exists
    # 10 s: ample for the other two (a shell printing one line), the hung one is killed then
    watch = await Watch.start(db, tmp_path / "s.json", wenv, "--exec-timeout", "10",
                              "--exec", str(hook))  # fmt: skip
    await fail_run(db, "bad", "a bad hook", wenv)
    await fail_run(db, "hang", "a hang hook", wenv)
    await fail_run(db, "fine", "a fine hook", wenv)
    expected = Counter({("bad", "failed"): 1, ("hang", "failed"): 1, ("fine", "failed"): 1})
    await wait_hook(wenv, expected, "all three")
    code, out, err = await watch.stop()
    assert code == 0, (out, err)
    assert printed(out) == expected, (out, err)
    assert err.splitlines() == [
        f"nanoagent watch: '{hook}' for run bad (failed) failed with exit status 3",
        f"nanoagent watch: '{hook}' for run hang (failed) killed after 10 s",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "crashed,bogus"], "--status takes a comma-separated list"),
        (["--status", ""], "--status takes a comma-separated list"),
        (["--exec"], "--exec needs a command"),
        (["--exec", "/no/such/command"], "command not found"),
        (["--exec-timeout", "nan"], "--exec-timeout must be more than 0"),
        (["--db", ":memory:"], "pass --db PATH"),
    ],
)
async def test_bad_input_is_one_line_and_exit_2(
    db: str, wenv: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    await complete_run(db, "first", wenv)
    result = await acli("watch", "--db", db, "--state", str(tmp_path / "s.json"), *args,
                        env=wenv)  # fmt: skip
    assert result.code == 2, result
    assert len(result.err_lines) == 1, result
    assert message in result.err, result


async def test_a_state_file_that_is_not_one_or_of_another_database_is_refused(
    db: str, wenv: dict[str, str], tmp_path: Path
) -> None:
    await complete_run(db, "first", wenv)
    other = str(tmp_path / "other.db")
    await complete_run(other, "first", wenv)
    state = tmp_path / "s.json"
    state.write_text("not json")
    result = await acli("watch", "--db", db, "--state", str(state), env=wenv)
    assert result.code == 2, result
    assert "is not a nanoagent watch state file" in result.err, result
    state.unlink()
    watch = await Watch.start(db, state, wenv)
    second = await acli("watch", "--db", db, "--state", str(state), env=wenv)
    assert second.code == 2, second
    assert "another 'nanoagent watch' uses" in second.err, second
    code, out, err = await watch.stop()
    assert (code, out, err) == (0, [], "")
    result = await acli("watch", "--db", other, "--state", str(state), env=wenv)
    assert result.code == 2, result
    assert "belongs to another database" in result.err, result
    assert len(result.err_lines) == 1


async def test_a_closed_stdout_exits_quietly_and_records_nothing_it_could_not_print(
    db: str, wenv: dict[str, str], tmp_path: Path
) -> None:
    await fail_run(db, "old-failed", "failed before", wenv)
    state = tmp_path / "s.json"
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout fails with EPIPE
    try:
        proc = await asyncio.create_subprocess_exec(
            NANOAGENT, "watch", "--all", "--db", db, "--state", str(state),
            env=wenv, stdin=asyncio.subprocess.DEVNULL, stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert (proc.returncode, err) == (141, b"")
    assert not state.exists()  # the next start reports old-failed again
