"""Starting detached workers: their own session, no shell, outliving whoever started them."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["reap_workers", "spawn_worker"]

_children: list[subprocess.Popen[bytes]] = []


def spawn_worker(
    location: str,
    run_id: str,
    *,
    heartbeat: float | None = None,
    new: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Start ``python -m nanoagent_core.worker`` for ``run_id`` in a new session (no shell,
    no terminal, stdio closed) and return its pid. The worker claims the run itself; if it
    cannot, the run shows why (busy, crashed)."""
    reap_workers()
    command = [sys.executable, "-m", "nanoagent_core.worker", "--db", location]
    if heartbeat is not None:
        command += ["--heartbeat", str(heartbeat)]
    if new:
        command.append("--new")  # only take up a run nobody has claimed yet
    command.append(run_id)
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        env=dict(os.environ if env is None else env),
    )
    _children.append(child)
    return child.pid


def reap_workers() -> None:
    """Collect workers this process started that have exited (no zombies left behind)."""
    _children[:] = [child for child in _children if child.poll() is None]
