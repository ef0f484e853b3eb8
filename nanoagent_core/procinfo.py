"""Who this worker is, and whether a recorded owner process is still the same live process.

A pid alone is not trusted (pids are reused): it is paired with the process's start time.
"""

from __future__ import annotations

import os
import socket
from enum import Enum
from functools import cache
from pathlib import Path

from nanoagent_core.defaults import HOST_VAR
from nanoagent_core.models import Owner

__all__ = [
    "Liveness",
    "current_owner",
    "host_name",
    "owner_alive",
    "owner_liveness",
    "process_start_time",
]


class Liveness(Enum):
    """What this host can tell of a recorded owner process."""

    ALIVE = "alive"  #: the same process is running (or sleeping, e.g. waiting on a lock)
    STOPPED = "stopped"  #: the same process, frozen (SIGSTOP): it makes no progress
    GONE = "gone"  #: dead, a zombie, or its pid now belongs to another process
    REMOTE = "remote"  #: on another host: only its lease can tell


def host_name() -> str:
    """This host's name as recorded in run owners (``NANOAGENT_HOST`` overrides it)."""
    return os.environ.get(HOST_VAR) or _real_host_name()


@cache
def _real_host_name() -> str:
    return socket.gethostname()


def _stat(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in clock ticks since boot) of a live process, or None.
    Off Linux (no /proc) a live pid gives ('?', 0.0)."""
    if pid <= 0:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return None if _fallback_alive(pid) is None else ("?", 0.0)
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X", "x"):
        return None
    return fields[0], float(fields[19])


def process_start_time(pid: int) -> float | None:
    """The start time of a live process (clock ticks since boot), or None if it is gone.

    A zombie (killed, not yet reaped) counts as gone. Off Linux, a live pid gives 0.0.
    """
    stat = _stat(pid)
    return None if stat is None else stat[1]


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


def owner_liveness(owner: Owner) -> Liveness:
    """Whether the recorded owner is still the same process, and whether it can progress."""
    if owner.host != host_name():
        return Liveness.REMOTE
    stat = _stat(owner.pid)
    if stat is None:
        return Liveness.GONE
    state, started = stat
    if owner.pid_started and started and started != owner.pid_started:
        return Liveness.GONE
    return Liveness.STOPPED if state in ("T", "t") else Liveness.ALIVE


def owner_alive(owner: Owner) -> bool | None:
    """True/False for an owner on this host (a frozen one counts as alive); None when the
    owner is on another host."""
    liveness = owner_liveness(owner)
    if liveness is Liveness.REMOTE:
        return None
    return liveness is not Liveness.GONE
