"""A foreground ``nanoagent run`` between storing its run and claiming it.

The command stores the run, then loads its agent and claims it; on a loaded machine that takes
seconds. The run used to be stored with no owner and no grace, so every viewer (``list``,
``watch``, the dashboard) saw it ``crashed`` in between (``test_watch`` reported a run crashed
that never was). It is stored as this process's own now: ``running`` while the process lives,
``crashed`` as soon as it dies unclaimed.

The worker is held right before its claim by a test hook (a FIFO it reads to its end), so the
window is as long as the test needs, with no timing involved.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from loopkit import acli_here, clean_env, kill_child, start_cli, wait_until

from nanoagent_core.worker import FAULT_HOLD_BEFORE_CLAIM

QUICK = ["--option", "tasks=2", "--option", "followups=0", "--option", "delay=0"]


async def _held_run(tmp_path: Path, run_id: str) -> tuple[asyncio.subprocess.Process, Path, str]:
    db = str(tmp_path / "runs.db")
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    env = clean_env(**{FAULT_HOLD_BEFORE_CLAIM: str(gate)})
    proc = await start_cli("run", "a goal", "--db", db, "--run-id", run_id, *QUICK, env=env)
    ready = Path(f"{gate}.ready")

    async def probe() -> bool:
        return ready.exists() or proc.returncode is not None

    await wait_until(probe, bool, timeout=120, what="the worker held before its claim")
    assert proc.returncode is None, "the command ended before its claim"
    return proc, gate, db


async def _listed(db: str, run_id: str) -> dict[str, object]:
    done = await acli_here("list", "--json", "--db", db)
    assert done.code == 0, done.err
    (run,) = [r for r in json.loads(done.out) if r["run_id"] == run_id]
    return run


async def test_a_foreground_run_shows_running_before_its_claim_and_then_completes(
    tmp_path: Path,
) -> None:
    proc, gate, db = await _held_run(tmp_path, "held")
    try:
        before = await _listed(db, "held")
        # not crashed: the process that stored it is alive and about to claim it
        assert before["status"] == "running"
        assert before["worker_pid"] == proc.pid
        with gate.open("w") as opened:  # let it claim
            opened.write("go")
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        kill_child(proc)
    assert proc.returncode == 0, err.decode()
    assert "run held completed" in out.decode()
    after = await _listed(db, "held")
    assert after["status"] == "completed"
    assert after["tasks_done"] == 2


async def test_a_foreground_run_killed_before_its_claim_shows_crashed_at_once(
    tmp_path: Path,
) -> None:
    proc, _gate, db = await _held_run(tmp_path, "doomed")
    kill_child(proc, signal.SIGKILL)
    await proc.wait()
    # no lease to wait out on this host: its recorded worker (pid + start time) is gone
    assert (await _listed(db, "doomed"))["status"] == "crashed"
    resumed = await acli_here("resume", "doomed", "--db", db)
    assert resumed.code == 0, resumed.err
    assert (await _listed(db, "doomed"))["status"] == "completed"
