"""``nanoagent demo`` starts one ``llm`` run on ``model=test`` besides the demo runs (the extra
is installed in this environment), and that run completes in its detached worker, offline."""

from __future__ import annotations

import contextlib
import os
import signal

from agentkit import cli, list_json, show_json, wait_for

from nanoagent_core.procinfo import current_owner, process_start_time


def test_demo_starts_an_llm_run_that_completes(db: str, env: dict[str, str]):
    started = cli("--db", db, "demo", "--no-dashboard", env=env, timeout=120)
    try:
        assert started.code == 0, started
        ids = started.out.split()
        llm = [run_id for run_id in ids if run_id.startswith("demo-llm-")]
        assert len(llm) == 1, ids
        assert len(ids) == 7

        def status() -> str:
            return show_json(db, llm[0], env)["status"]

        wait_for(status, lambda s: s == "completed", timeout=120)
        doc = show_json(db, llm[0], env)
        assert doc["agent"] == "llm"
        assert doc["tasks_done"] == doc["tasks_total"] == 4
    finally:
        # the other demo runs go on for a while: stop their workers (this test started them)
        host = current_owner().host
        for run in list_json(db, env):
            pid = run["worker_pid"]
            mine = run["worker_host"] == host and run["status"] == "running"
            if mine and pid and process_start_time(pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
