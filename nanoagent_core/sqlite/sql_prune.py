"""The prune statements of the SQLite store (sql.py, split for size: the same conventions)."""

from __future__ import annotations

__all__ = [
    "AUTO_VACUUM",
    "CHECKPOINT_TRUNCATE",
    "FREELIST_COUNT",
    "INCREMENTAL_VACUUM",
    "PAGE_SIZE",
    "PRUNE_BOUNDARY",
    "PRUNE_CANDIDATES",
    "PRUNE_COUNT",
    "PRUNE_DELETE",
    "PRUNE_IDS",
    "PRUNE_KEEP",
    "PRUNE_OWNED",
    "PRUNE_RECHECK",
    "PRUNE_STATUS",
    "PRUNE_WHERE",
    "SET_INCREMENTAL",
    "VACUUM",
]

# -- retention (prune) -----------------------------------------------------------------------
# Statuses and ids travel as JSON arrays (json_each), times as REAL seconds. Every table that
# holds a run's rows references runs (run_id) ON DELETE CASCADE (foreign_keys is ON on every
# connection), so deleting the run row deletes its tasks, results, events and any table a
# later migration adds the same way. Counting what goes: PRUNE_OWNED (extend it when a new
# table's rows should be reported).

PRUNE_STATUS = "status IN (SELECT value FROM json_each(:statuses))"
#: the ``keep_last``-th newest finished run of the statuses: prunable runs sort below it
PRUNE_BOUNDARY = (
    f"SELECT finished_at, run_id FROM runs WHERE {PRUNE_STATUS} AND finished_at IS NOT NULL"
    " ORDER BY finished_at DESC, run_id DESC LIMIT 1 OFFSET :keep_offset"
)
#: the predicate the candidates and the delete both apply ({keep}: PRUNE_KEEP or nothing)
#: The run holding the newest event is never pruned: SQLite gives a new row max(id) + 1, so
#: deleting the newest events would hand their ids out again, below a follower's cursor.
PRUNE_WHERE = (
    f"{PRUNE_STATUS} AND finished_at < :cutoff{{keep}}"
    " AND run_id IS NOT (SELECT run_id FROM events ORDER BY id DESC LIMIT 1)"
)
PRUNE_KEEP = " AND (finished_at, run_id) < (:keep_at, :keep_id)"
#: candidates in primary-key order: each batch walks the key index and stops at ``limit``
PRUNE_CANDIDATES = f"SELECT run_id FROM runs WHERE {PRUNE_WHERE} ORDER BY run_id LIMIT :limit"
PRUNE_IDS = "run_id IN (SELECT value FROM json_each(:ids))"
PRUNE_OWNED = (
    f"SELECT (SELECT count(*) FROM tasks WHERE {PRUNE_IDS}),"
    f" (SELECT count(*) FROM events WHERE {PRUNE_IDS})"
)
#: re-checked inside the delete's own transaction: a run claimed meanwhile stays
PRUNE_RECHECK = f"SELECT run_id FROM runs WHERE {PRUNE_IDS} AND {PRUNE_WHERE}"
PRUNE_DELETE = f"DELETE FROM runs WHERE {PRUNE_IDS} AND {PRUNE_WHERE}"
PRUNE_COUNT = (
    f"WITH doomed AS (SELECT run_id FROM runs WHERE {PRUNE_WHERE})"
    " SELECT (SELECT count(*) FROM doomed),"
    " (SELECT count(*) FROM tasks WHERE run_id IN (SELECT run_id FROM doomed)),"
    " (SELECT count(*) FROM events WHERE run_id IN (SELECT run_id FROM doomed))"
)

AUTO_VACUUM = "PRAGMA auto_vacuum"
FREELIST_COUNT = "PRAGMA freelist_count"
PAGE_SIZE = "PRAGMA page_size"
INCREMENTAL_VACUUM = "PRAGMA incremental_vacuum({pages})"
CHECKPOINT_TRUNCATE = "PRAGMA wal_checkpoint(TRUNCATE)"
VACUUM = "VACUUM"
#: auto_vacuum of a new file (only before its first table): pruned space goes back to the
#: file system in short steps, without VACUUM's exclusive lock
SET_INCREMENTAL = "PRAGMA auto_vacuum = INCREMENTAL"
