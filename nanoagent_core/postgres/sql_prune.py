"""The prune statements of the PostgreSQL store (sql.py, split for size: the same templates,
``{schema}`` and ``{now}``, named parameters)."""

from __future__ import annotations

__all__ = [
    "PRUNE_BOUNDARY",
    "PRUNE_CANDIDATES",
    "PRUNE_COUNT",
    "PRUNE_CUTOFF",
    "PRUNE_DELETE",
    "PRUNE_KEEP",
    "PRUNE_REMAINING",
    "PRUNE_STATUS",
    "PRUNE_WHERE",
]

# -- retention (prune) -------------------------------------------------------------------------
# Every table holding a run's rows references runs (run_id) ON DELETE CASCADE, so deleting
# the run row deletes its tasks, results, events and any table a later migration adds the
# same way. The delete takes no lock on ``counters`` (a worker appending an event to that run
# would hold it while waiting for the run row: a deadlock); it only notifies listeners.

PRUNE_CUTOFF = "SELECT {now} - %(older_than)s::interval"
PRUNE_STATUS = "status = ANY(%(statuses)s::text[])"
#: the ``keep_last``-th newest finished run of the statuses: prunable runs sort below it
PRUNE_BOUNDARY = (
    f"SELECT finished_at, run_id FROM {{schema}}.runs WHERE {PRUNE_STATUS}"
    " AND finished_at IS NOT NULL ORDER BY finished_at DESC, run_id DESC"
    " LIMIT 1 OFFSET %(keep_offset)s"
)
#: The run holding the newest event stays (as on SQLite, where its ids would be reused; here
#: the counters row never goes back, but every store prunes the same runs).
PRUNE_WHERE = (
    f"{PRUNE_STATUS} AND finished_at < %(cutoff)s{{keep}}"
    " AND run_id IS DISTINCT FROM (SELECT run_id FROM {schema}.events ORDER BY id DESC LIMIT 1)"
)
PRUNE_KEEP = " AND (finished_at, run_id) < (%(keep_at)s::timestamptz, %(keep_id)s::text)"
PRUNE_CANDIDATES = (
    f"SELECT run_id FROM {{schema}}.runs WHERE {PRUNE_WHERE} ORDER BY run_id LIMIT %(limit)s"
)
#: One statement: the delete re-checks status and age (a run claimed meanwhile stays: under
#: READ COMMITTED a row changed by a concurrent claim is re-evaluated after its commit), and
#: the counts of what the deleted runs owned (read from the statement's snapshot).
PRUNE_DELETE = (
    "WITH gone AS ("
    f"  DELETE FROM {{schema}}.runs WHERE run_id = ANY(%(ids)s::text[]) AND {PRUNE_WHERE}"
    "  RETURNING run_id"
    ") SELECT (SELECT count(*) FROM gone),"
    " (SELECT count(*) FROM {schema}.tasks WHERE run_id IN (SELECT run_id FROM gone)),"
    " (SELECT count(*) FROM {schema}.events WHERE run_id IN (SELECT run_id FROM gone)),"
    " pg_notify(%(channel)s, '')"
)
PRUNE_COUNT = (
    "WITH doomed AS ("
    f"  SELECT run_id FROM {{schema}}.runs WHERE {PRUNE_WHERE}"
    ") SELECT (SELECT count(*) FROM doomed),"
    " (SELECT count(*) FROM {schema}.tasks WHERE run_id IN (SELECT run_id FROM doomed)),"
    " (SELECT count(*) FROM {schema}.events WHERE run_id IN (SELECT run_id FROM doomed))"
)
PRUNE_REMAINING = "SELECT count(*) FROM {schema}.runs WHERE run_id = ANY(%(ids)s::text[])"
