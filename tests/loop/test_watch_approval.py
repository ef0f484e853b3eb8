"""``nanoagent watch --exec`` on real runs that wait for approval: the run's pause reaches
the command once, with status ``paused`` and the reason naming the action; approving it
(the run then completes) and restarting the watch report nothing more."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from loopkit import acli, acli_here, kill_child, option_args, start_cli, wait_until

#: Appends the environment it receives, one line per call.
HOOK = """#!/bin/sh
printf '%s|%s|%s\\n' "$NANOAGENT_RUN_ID" "$NANOAGENT_STATUS" "$NANOAGENT_REASON" >> "$HOOK_OUT"
"""

OPTIONS = {"tasks": "2", "followups": "0", "delay": "0", "approve": "1"}


def lines(out: Path) -> list[tuple[str, ...]]:
    return (
        [tuple(line.split("|", 2)) for line in out.read_text().splitlines()] if out.exists() else []
    )


async def start_watch(
    db: str, state: Path, hook: Path, env: dict[str, str]
) -> asyncio.subprocess.Process:
    proc = await start_cli("watch", "--db", db, "--state", str(state), "--status", "paused",
                           "--exec", str(hook), env=env)  # fmt: skip

    async def looked() -> bool:
        return state.exists() or proc.returncode is not None

    await wait_until(looked, bool, timeout=60, what="the state file")
    assert proc.returncode is None
    return proc


async def stop(proc: asyncio.subprocess.Process) -> tuple[int | None, str]:
    kill_child(proc, signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode()


async def test_watch_exec_gets_the_approval_pause_once(
    db: str, env: dict[str, str], tmp_path: Path
) -> None:
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    out = tmp_path / "hook.out"
    wenv = {**env, "HOOK_OUT": str(out), "XDG_STATE_HOME": str(tmp_path / "state")}
    state = tmp_path / "watch.json"
    # the database exists before the watch starts
    first = await acli_here("run", "First", "--db", db, "--run-id", "first",
                       *option_args({**OPTIONS, "approve": ""}), env=wenv)  # fmt: skip
    assert first.code == 0, first
    watch = await start_watch(db, state, hook, wenv)
    ran = await acli_here("run", "Waits for a person", "--db", db, "--run-id", "waits",
                     *option_args(OPTIONS), env=wenv)  # fmt: skip
    assert ran.code == 6, ran

    async def probe() -> list[tuple[str, ...]]:
        return lines(out)

    got = await wait_until(probe, lambda got: len(got) >= 1, timeout=90, what="the hook")
    (run_id, status, reason) = got[0]
    assert (run_id, status) == ("waits", "paused")
    assert reason == "approval: send_summary: step 1 wants to email its summary to the team"
    code, printed = await stop(watch)
    assert code == 0
    assert "waits paused: approval: send_summary" in printed

    # decided and finished while the watch is down, then a restart: nothing more to report
    approved = await acli("approve", "waits", "--db", db, env=wenv)
    assert approved.code == 0, approved
    shown = await acli_here("show", "waits", "--follow", "--db", db, env=wenv)
    assert shown.code == 0, shown  # completed
    watch = await start_watch(db, state, hook, wenv)
    again = await acli_here("run", "Waits again", "--db", db, "--run-id", "again",
                       *option_args(OPTIONS), env=wenv)  # fmt: skip
    assert again.code == 6, again
    got = await wait_until(probe, lambda got: len(got) >= 2, timeout=90, what="the second pause")
    code, _ = await stop(watch)
    assert code == 0
    assert [(line[0], line[1]) for line in lines(out)] == [("waits", "paused"), ("again", "paused")]
