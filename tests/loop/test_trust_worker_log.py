"""A detached worker's log (issue 10, item 6), with a real worker and a real SQLite lock.

* A heartbeat that cannot renew the lease (another connection holds the write lock past the
  busy timeout) is logged at WARNING with the run id, in the worker's 0600 log next to the
  database, the file ``show`` names. Before, the heartbeat swallowed the error silently.
* ``--log-level INFO`` reaches the worker: its claim is logged.
* The log is bounded: records stop at the limit (one line says so), and a log at the limit is
  emptied when the next worker for the run starts.
* The dashboard never writes a record to the terminal it draws on.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopkit import Reaper, acli, acli_here, ashow_json, wait_pid_gone, wait_until

from nanoagent_core import launch
from nanoagent_core.defaults import WORKER_LOG_LIMIT
from nanoagent_core.logs import LIMIT_NOTE, BoundedStreamHandler, configure, silence
from nanoagent_core.paths import worker_log_path


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    """nanoagent_core's logger, restored after the test (handlers, level, propagation)."""
    logger = logging.getLogger("nanoagent_core")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        yield logger
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


async def test_a_heartbeat_that_cannot_renew_is_logged_in_the_worker_log(
    db: str, env: dict[str, str], reaper: Reaper
) -> None:
    started = await acli(
        "run", "log the heartbeat", "--db", db, "--detach", "--heartbeat", "0.2",
        "--log-level", "INFO", "--option", "tasks=2", "--option", "delay=600",
        env=env,
    )  # fmt: skip
    assert started.code == 0, started
    run_id = started.out.strip()
    doc = await wait_until(
        lambda: ashow_json(db, run_id),
        lambda d: any(e["kind"] == "task_started" for e in d["events"]),
        timeout=120,
        what="the worker inside its first task",
    )
    pid = doc["worker_pid"]
    reaper.track(pid)
    log = worker_log_path(db, run_id)
    try:
        assert f"run {run_id}: claimed" in log.read_text()  # --log-level INFO reached it
        locker = sqlite3.connect(db, isolation_level=None, timeout=60)
        try:
            locker.execute("BEGIN IMMEDIATE")  # the write lock, held past the busy timeout
            text = await wait_until(
                lambda: _read(log),
                lambda t: "heartbeat could not renew the lease" in t,
                timeout=180,
                interval=0.2,
                what="a heartbeat warning in the worker log",
            )
        finally:
            locker.rollback()
            locker.close()
        line = next(x for x in text.splitlines() if "heartbeat could not renew" in x)
        assert " WARNING nanoagent_core.worker: " in line
        assert f"run {run_id}:" in line
        assert "DatabaseBusyError" in line
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        shown = await acli_here("show", run_id, "--db", db, env=env)
        assert f"worker log: {log}" in shown.out
    finally:
        os.kill(pid, signal.SIGKILL)
        await wait_pid_gone(pid, timeout=60)


async def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_records_stop_at_the_limit_with_one_line_saying_so(
    tmp_path: Path, package_logger: logging.Logger
) -> None:
    path = tmp_path / "worker.log"
    limit = 2000
    with path.open("w") as stream:
        handler = BoundedStreamHandler(stream, limit)
        package_logger.handlers[:] = [handler]
        package_logger.setLevel(logging.INFO)
        package_logger.propagate = False
        log = logging.getLogger("nanoagent_core.worker")
        for i in range(500):
            log.warning("run r%d: heartbeat could not renew the lease (%s)", i, "x" * 40)
    size = path.stat().st_size
    text = path.read_text()
    assert size <= limit
    assert text.endswith(LIMIT_NOTE)
    assert text.count(LIMIT_NOTE) == 1
    assert "run r0:" in text


def test_a_log_at_the_limit_is_emptied_when_the_next_worker_starts(tmp_path: Path) -> None:
    path = tmp_path / "runs.db.logs" / "r1.log"
    path.parent.mkdir()
    path.write_bytes(b"x" * WORKER_LOG_LIMIT)
    fd, offset = launch._open_log(path)  # pyright: ignore[reportPrivateUsage]
    os.close(fd)
    assert offset == 0
    assert path.stat().st_size == 0
    small = tmp_path / "runs.db.logs" / "r2.log"
    small.write_bytes(b"kept\n")
    fd, offset = launch._open_log(small)  # pyright: ignore[reportPrivateUsage]
    os.close(fd)
    assert offset == 5
    assert small.read_bytes() == b"kept\n"


#: A fresh interpreter (no pytest logging handlers): the dashboard, replaced by a stand-in
#: that logs a warning the way core code running under it would, opened by the console script.
_DASHBOARD_CHILD = """
import logging, sys
import nanoagent_tui.app, nanoagent_tui.cli

def dashboard(location):
    logging.getLogger("nanoagent_core.worker").warning("heartbeat trouble under the dashboard")
    return 0

nanoagent_tui.app.run_dashboard = dashboard
sys.exit(nanoagent_tui.cli.main(["tui", "--db", sys.argv[1]]))
"""


def test_the_dashboard_writes_no_record_to_its_terminal(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DASHBOARD_CHILD, str(tmp_path / "runs.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_configure_sends_records_at_the_level_to_stderr(
    capfd: pytest.CaptureFixture[str], package_logger: logging.Logger
) -> None:
    configure("INFO")
    logging.getLogger("nanoagent_core.loop").info("run r: task t failed; retrying")
    logging.getLogger("nanoagent_core.loop").debug("not shown")
    err = capfd.readouterr().err
    assert "INFO nanoagent_core.loop: run r: task t failed; retrying" in err
    assert "not shown" not in err
    silence()
