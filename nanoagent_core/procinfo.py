"""Who this worker is, and whether a recorded owner process is still the same live process.

A pid alone is not trusted (pids are reused): it is paired with the process's start time.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path

from nanoagent_core.models import Owner

__all__ = ["current_owner", "host_name", "owner_alive", "process_start_time"]


def host_name() -> str:
    """This host's name as recorded in run owners (``NANOAGENT_HOST`` overrides it)."""
    return os.environ.get("NANOAGENT_HOST") or _real_host_name()


@cache
def _real_host_name() -> str:
    return socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """The start time of a live process (clock ticks since boot), or None if it is gone.

    A zombie (killed, not yet reaped) counts as gone. Off Linux, a live pid gives 0.0.
    """
    if pid <= 0:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _fallback_alive(pid)
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return float(fields[19])


def _fallback_alive(pid: int) -> float | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0.0
    return 0.0


def current_owner() -> Owner:
    pid = os.getpid()
    return Owner(host=host_name(), pid=pid, pid_started=process_start_time(pid) or 0.0)


def owner_alive(owner: Owner) -> bool | None:
    """True/False for an owner on this host; None when the owner is on another host."""
    if owner.host != host_name():
        return None
    started = process_start_time(owner.pid)
    if started is None:
        return False
    return not (owner.pid_started and started and started != owner.pid_started)
