"""One home for nanoagent's defaults and the names of its environment variables."""

from __future__ import annotations

__all__ = [
    "ALLOWED_DIR_VAR",
    "DB_VAR",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_LOG_LEVEL",
    "DEFAULT_MAX_ITERATIONS",
    "FAULT_KILL_AFTER_COMMIT",
    "HOST_VAR",
    "LEASE_BEATS",
    "LOG_LEVELS",
    "READY_FD_VAR",
    "WORKER_LOG_LIMIT",
    "lease_seconds",
]

#: A new run's iteration budget (``run --max-iterations``, the dashboard's form, the demo).
DEFAULT_MAX_ITERATIONS = 50
#: Seconds between a worker's heartbeats (``--heartbeat``).
DEFAULT_HEARTBEAT = 2.0
#: A lease lasts this many heartbeats: a worker may miss all but one before it loses the run.
LEASE_BEATS = 3

#: ``--log-level`` choices and default (INFO adds claims, heartbeat trouble and retries).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LOG_LEVEL = "WARNING"
#: The most bytes of log records a detached worker's log holds: a log already this big is
#: emptied when a worker starts on it, and a worker stops logging (saying so once) when its
#: log reaches it.
WORKER_LOG_LIMIT = 1024 * 1024

#: The database location (``--db`` overrides it); also how a detached worker learns it.
DB_VAR = "NANOAGENT_DB"
#: When set, the database and any file an agent option names must lie inside this directory.
ALLOWED_DIR_VAR = "NANOAGENT_ALLOWED_DIR"
#: Overrides this host's name as recorded in run owners.
HOST_VAR = "NANOAGENT_HOST"
#: Tells a detached worker which inherited fd to report its claim on.
READY_FD_VAR = "NANOAGENT_READY_FD"
#: Test fault injector, never set in normal use: ``NANOAGENT_FAULT_KILL_AFTER_COMMIT=k`` makes
#: a worker SIGKILL itself right after its k-th committed step.
FAULT_KILL_AFTER_COMMIT = "NANOAGENT_FAULT_KILL_AFTER_COMMIT"


def lease_seconds(heartbeat: float) -> float:
    """How long a lease renewed every ``heartbeat`` seconds lasts."""
    return LEASE_BEATS * heartbeat
