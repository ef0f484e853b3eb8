"""Starting detached workers: their own session, no shell, outliving whoever started them.

* The worker runs as ``python -P -m nanoagent_core.worker_main RUN_ID``: ``-P`` keeps the current
  directory off ``sys.path`` (a planted ``aiosqlite.py`` there is never imported), and only
  absolute ``PYTHONPATH`` entries are passed on (an empty or relative one would name the
  current directory again). The imports are those of the installed console script.
* The database location travels in the child's environment (``NANOAGENT_DB``), never on its
  command line, where any user of the host could read a password.
* Its stderr goes to a 0600 log file (:func:`nanoagent_core.paths.worker_log_path`); it says
  on a pipe when it has claimed the run. :func:`start_worker` waits for that, or for the
  worker's end and its first error line, before anyone says the run is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nanoagent_core.clip import clip
from nanoagent_core.defaults import DB_VAR, READY_FD_VAR, WORKER_LOG_LIMIT
from nanoagent_core.errors import NanoagentError
from nanoagent_core.paths import MEMORY, is_postgres_url, worker_log_path

__all__ = [
    "CLAIMED",
    "CONFIRM_TIMEOUT",
    "READY_FD_VAR",
    "WorkerStartError",
    "announce_claim",
    "first_error_line",
    "reap_workers",
    "spawn_worker",
    "start_worker",
    "take_ready_fd",
]

#: What the worker writes on that fd once it holds the run.
CLAIMED = b"claimed\n"
#: How long :func:`start_worker` waits for a worker to claim its run (it normally takes well
#: under a second; the database's busy timeout and a loaded machine are what it allows for).
CONFIRM_TIMEOUT = 60.0

_children: list[subprocess.Popen[bytes]] = []
#: In a detached worker, the write end of its claim pipe until the claim is announced.
_ready_fd: list[int] = []


class WorkerStartError(NanoagentError):
    """The detached worker did not take up the run."""

    exit_code = 1


@dataclass
class _Spawned:
    child: subprocess.Popen[bytes]
    ready: int  #: read end of the claim pipe
    log: Path
    log_offset: int


def _child_env(location: str, env: Mapping[str, str] | None) -> dict[str, str]:
    child = dict(os.environ if env is None else env)
    if location != MEMORY and not is_postgres_url(location):
        location = os.path.abspath(location)  # the child resolves nothing against a cwd
    child[DB_VAR] = location
    paths = [p for p in child.pop("PYTHONPATH", "").split(os.pathsep) if os.path.isabs(p)]
    if paths:
        child["PYTHONPATH"] = os.pathsep.join(paths)
    child.pop(READY_FD_VAR, None)
    return child


def _open_log(path: Path) -> tuple[int, int]:
    """The log file opened for appending (0600, its folder 0700), and its size before; a log
    that has reached WORKER_LOG_LIMIT is emptied first (see nanoagent_core.logs)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        if os.fstat(fd).st_size >= WORKER_LOG_LIMIT:
            os.ftruncate(fd, 0)
        return fd, os.fstat(fd).st_size
    except OSError:
        os.close(fd)
        raise


def _spawn(
    location: str,
    run_id: str,
    *,
    heartbeat: float | None,
    new: bool,
    env: Mapping[str, str] | None,
    log_level: str | None = None,
    worker_args: Sequence[str] = (),
) -> _Spawned:
    reap_workers()
    child_env = _child_env(location, env)
    log = worker_log_path(location, run_id, child_env)
    try:
        log_fd, offset = _open_log(log)
    except OSError as exc:
        raise WorkerStartError(f"cannot open the worker log {log}: {exc.strerror}") from None
    command = [sys.executable, "-P", "-m", "nanoagent_core.worker_main"]
    if heartbeat is not None:
        command += ["--heartbeat", str(heartbeat)]
    if log_level is not None:
        command += ["--log-level", log_level]
    if new:
        command.append("--new")  # only take up a run nobody has claimed yet
    command += worker_args  # options of ``resume`` (a raised budget), checked by the caller
    command.append(run_id)
    ready, ready_w = os.pipe()
    child_env[READY_FD_VAR] = str(ready_w)
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
            pass_fds=(ready_w,),
            env=child_env,
        )
    except OSError:
        os.close(ready)
        raise
    finally:
        os.close(ready_w)
        os.close(log_fd)
    _children.append(child)
    return _Spawned(child, ready, log, offset)


def spawn_worker(
    location: str,
    run_id: str,
    *,
    heartbeat: float | None = None,
    new: bool = False,
    env: Mapping[str, str] | None = None,
    log_level: str | None = None,
) -> int:
    """Start a detached worker for ``run_id`` (no shell, no terminal, stderr to its log) and
    return its pid at once, without waiting for its claim (see :func:`start_worker`)."""
    spawned = _spawn(location, run_id, heartbeat=heartbeat, new=new, env=env, log_level=log_level)
    os.close(spawned.ready)
    return spawned.child.pid


async def start_worker(
    location: str,
    run_id: str,
    *,
    heartbeat: float | None = None,
    new: bool = False,
    env: Mapping[str, str] | None = None,
    log_level: str | None = None,
    timeout: float = CONFIRM_TIMEOUT,
    worker_args: Sequence[str] = (),
) -> int:
    """Start a detached worker for ``run_id`` and return its pid once it has claimed the run
    (or found nothing to do). WorkerStartError with the worker's first error line if it
    ended without claiming, or if it has not claimed within ``timeout`` seconds."""
    spawned = _spawn(
        location,
        run_id,
        heartbeat=heartbeat,
        new=new,
        env=env,
        log_level=log_level,
        worker_args=worker_args,
    )
    # the thread closes the pipe itself: closing it here while the thread still waits on it
    # (this task cancelled) could hand its number to another file that the thread then reads
    said = await asyncio.to_thread(_wait_ready, spawned.ready, timeout)
    if said == CLAIMED:
        return spawned.child.pid
    pid = spawned.child.pid
    if said is None:
        raise WorkerStartError(
            f"worker pid {pid} has not claimed run {run_id} within {timeout:g}s"
            f" (its log: {spawned.log})"
        )
    code = await asyncio.to_thread(_exit_code, spawned.child, timeout)
    if code == 0 or (new and code == 4):
        return pid  # nothing to do (completed meanwhile, or another worker took it up)
    line = first_error_line(spawned.log, spawned.log_offset)
    why = line or f"it exited with status {code}"
    raise WorkerStartError(f"worker for run {run_id} did not start: {why} (log: {spawned.log})")


def _wait_ready(fd: int, timeout: float) -> bytes | None:
    """What the worker said on the pipe: CLAIMED, b"" (it closed the pipe, by exiting), or
    None if it said nothing within ``timeout``. Closes ``fd``."""
    try:
        return _read_ready(fd, timeout)
    finally:
        os.close(fd)


def _read_ready(fd: int, timeout: float) -> bytes | None:
    deadline = time.monotonic() + timeout
    said = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 64)
        if not chunk:
            return said
        said += chunk
        if said.endswith(b"\n"):
            return said


def _exit_code(child: subprocess.Popen[bytes], timeout: float) -> int | None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        return child.wait(timeout)
    return None


def first_error_line(log: Path, offset: int = 0, *, limit: int = 300) -> str:
    """The line that says why a worker stopped, from its log after ``offset``: the first
    ``nanoagent: ...`` line, else the last line (a traceback's last line names the error).
    Control characters are shown escaped."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith("nanoagent:")), None)
    if chosen is None:
        chosen = lines[-1] if lines else ""
    chosen = chosen.removeprefix("nanoagent: ")
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in chosen)
    return shown if len(shown) <= limit else clip(shown, limit + 3, "...")


def reap_workers() -> None:
    """Collect workers this process started that have exited (no zombies left behind)."""
    _children[:] = [child for child in _children if child.poll() is None]


def take_ready_fd() -> None:
    """In a detached worker: take the claim pipe named by NANOAGENT_READY_FD out of the
    environment (nothing the agent starts inherits it)."""
    raw = os.environ.pop(READY_FD_VAR, None)
    if raw and raw.isdigit():
        try:
            os.set_inheritable(int(raw), False)
        except OSError:
            return
        _ready_fd.append(int(raw))


def announce_claim() -> None:
    """In a detached worker that has just claimed its run: say so on the claim pipe, once."""
    while _ready_fd:
        fd = _ready_fd.pop()
        with contextlib.suppress(OSError):
            os.write(fd, CLAIMED)
        with contextlib.suppress(OSError):
            os.close(fd)
