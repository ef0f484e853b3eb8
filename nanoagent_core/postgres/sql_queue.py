"""The queue's statements of the PostgreSQL store (sql.py, split for size: the same
templates, ``{schema}`` and ``{now}``, named parameters)."""

from __future__ import annotations

from nanoagent_core.postgres.sql import RUN_COLUMNS

__all__ = [
    "CLAIM_CRASHED",
    "CLAIM_NEXT",
    "COUNT_RESTARTS",
    "FAIL_CLAIMED",
    "NOTIFY_QUEUE",
    "queue_channel",
]

# -- the queue (pool workers) ------------------------------------------------------------------


def queue_channel(schema: str) -> str:
    """The channel on which enqueued runs are announced to idle pool workers."""
    return f"nanoagent-queue:{schema}"


#: The oldest queued run (creation time, then id) no abort was requested for, claimed by the
#: database's clock. SKIP LOCKED: racing claimers each lock a different run (one winner per
#: run; a row claimed meanwhile fails the re-check under its lock and is skipped).
CLAIM_NEXT = (
    "UPDATE {schema}.runs SET owner_host = %(host)s, owner_pid = %(pid)s,"
    " owner_pid_started = %(pid_started)s, epoch = epoch + 1, status = 'running',"
    " heartbeat_at = {now}, lease_expires_at = {now} + %(lease)s::interval,"
    " finished_at = NULL, error = NULL, updated_at = {now}"
    " WHERE run_id = (SELECT run_id FROM {schema}.runs WHERE status = 'queued'"
    "   AND abort_requested_at IS NULL ORDER BY created_at, run_id LIMIT 1"
    "   FOR UPDATE SKIP LOCKED)"
    f" RETURNING {RUN_COLUMNS}"
)

#: A crashed run taken up by recovery: as CLAIM_RUN, but only a run still stored running.
CLAIM_CRASHED = (
    "UPDATE {schema}.runs SET owner_host = %(host)s, owner_pid = %(pid)s,"
    " owner_pid_started = %(pid_started)s, epoch = epoch + 1, heartbeat_at = {now},"
    " lease_expires_at = {now} + %(lease)s::interval, updated_at = {now}"
    " WHERE run_id = %(run_id)s AND epoch = %(expected_epoch)s AND status = 'running'"
    " AND (owner_pid IS NULL OR lease_expires_at IS NULL"
    "      OR lease_expires_at <= {now} OR (%(owner_gone)s AND owner_host = %(host)s))"
    f" RETURNING {RUN_COLUMNS}"
)

#: How often recovery has taken the run up already (its restart events).
COUNT_RESTARTS = (
    "SELECT count(*) FROM {schema}.events WHERE run_id = %(run_id)s AND kind = 'run_restarted'"
)

#: A claimed crashed run whose restart budget is spent ends failed, released.
FAIL_CLAIMED = (
    "UPDATE {schema}.runs SET status = 'failed', owner_host = NULL, owner_pid = NULL,"
    " owner_pid_started = NULL, lease_expires_at = NULL, finished_at = {now},"
    " updated_at = {now}, error = %(reason)s"
    f" WHERE run_id = %(run_id)s RETURNING {RUN_COLUMNS}"
)

#: Rides with a write that queues a run: wakes idle pool workers (LISTEN on queue_channel).
NOTIFY_QUEUE = "SELECT pg_notify(%(queue)s, %(run_id)s)"
