"""Pruning on SQLite: choose finished runs, delete them in one short write transaction each
batch (re-checking what it deletes), count them, and give the space back. Functions of a
connection, run on the store's thread (``SQLiteStore`` calls them)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from nanoagent_core import store_rules as rules
from nanoagent_core.models import RunStatus
from nanoagent_core.protocols import PruneCount
from nanoagent_core.sqlite import sql_prune
from nanoagent_core.sqlite.schema import in_transaction
from nanoagent_core.sqltext import fill

__all__ = ["count", "delete_batch", "params", "reclaim_space"]

#: Pages one incremental-vacuum step frees (4 MiB at 4 KiB pages): its write lock stays short.
_VACUUM_STEP = 1024


def params(
    statuses: Sequence[RunStatus], older_than: timedelta, keep_last: int, limit: int, now: float
) -> dict[str, Any]:
    """The statements' parameters (the criteria checked by the shared rules)."""
    wanted = rules.prune_statuses(statuses)
    rules.prune_limits(older_than, keep_last, limit)
    return {
        "statuses": json.dumps(wanted),
        "cutoff": now - older_than.total_seconds(),
        "keep_offset": keep_last - 1,
        "limit": limit,
    }


def _keep_fragment(conn: sqlite3.Connection, params: dict[str, Any], keep_last: int) -> str | None:
    """The keep fragment (reading the boundary into ``params``); None: nothing prunable."""
    if not keep_last:
        return ""
    row = conn.execute(sql_prune.PRUNE_BOUNDARY, params).fetchone()
    if row is None:
        return None
    params["keep_at"], params["keep_id"] = row
    return sql_prune.PRUNE_KEEP


def delete_batch(conn: sqlite3.Connection, params: dict[str, Any], keep_last: int) -> PruneCount:
    """Delete one batch. Choosing reads a snapshot without the write lock; the delete's
    transaction is short (and re-checks what it deletes), so workers' commits wait little."""

    def choose(conn: sqlite3.Connection) -> list[str]:
        keep = _keep_fragment(conn, params, keep_last)
        if keep is None:
            return []
        params["keep"] = keep
        query = fill(sql_prune.PRUNE_CANDIDATES, keep=keep)
        return [str(row[0]) for row in conn.execute(query, params)]

    def delete(conn: sqlite3.Connection, candidates: list[str]) -> PruneCount:
        keep = params.pop("keep")
        batch = {**params, "ids": json.dumps(candidates)}
        victims = [row[0] for row in conn.execute(fill(sql_prune.PRUNE_RECHECK, keep=keep), batch)]
        if not victims:
            return PruneCount(candidates=len(candidates))
        batch["ids"] = json.dumps(victims)
        tasks, events = conn.execute(sql_prune.PRUNE_OWNED, batch).fetchone()
        deleted = conn.execute(fill(sql_prune.PRUNE_DELETE, keep=keep), batch).rowcount
        return PruneCount(len(candidates), deleted, int(tasks), int(events))

    candidates = in_transaction(conn, "BEGIN", choose)
    if not candidates:
        return PruneCount()
    return in_transaction(conn, "BEGIN IMMEDIATE", delete, candidates)


def count(conn: sqlite3.Connection, params: dict[str, Any], keep_last: int) -> PruneCount:
    """What :func:`delete_batch` would delete, all batches together."""
    keep = _keep_fragment(conn, params, keep_last)
    if keep is None:
        return PruneCount()
    runs, tasks, events = conn.execute(fill(sql_prune.PRUNE_COUNT, keep=keep), params).fetchone()
    return PruneCount(int(runs), int(runs), int(tasks), int(events))


def reclaim_space(conn: sqlite3.Connection, vacuum: bool) -> str:
    """Checkpoint the WAL into the file and truncate it; hand free pages back to the file
    system by incremental vacuum in short steps when the file allows it, else (VACUUM
    holds the write lock for as long as it rewrites the whole file) only when asked."""
    (mode,) = conn.execute(sql_prune.AUTO_VACUUM).fetchone()
    (page,) = conn.execute(sql_prune.PAGE_SIZE).fetchone()
    (free,) = conn.execute(sql_prune.FREELIST_COUNT).fetchone()
    if mode == 2:  # incremental: in steps, each its own short write transaction
        step = fill(sql_prune.INCREMENTAL_VACUUM, pages=str(_VACUUM_STEP))
        while True:
            conn.execute(step).fetchall()
            (left,) = conn.execute(sql_prune.FREELIST_COUNT).fetchone()
            if left == 0 or left >= free:
                break
            free = left
        note = "free pages returned by incremental vacuum"
    elif vacuum:
        conn.execute(sql_prune.VACUUM)
        note = "file rewritten by VACUUM"
    elif free:
        note = (
            f"{free:,} free pages ({free * page:,} bytes) stay in the file for reuse:"
            " this file's auto_vacuum is off, and VACUUM holds the write lock (workers"
            " wait) while it rewrites the file; run 'nanoagent prune --vacuum' when"
            " that is acceptable"
        )
    else:
        note = "no free pages"
    busy, _, _ = conn.execute(sql_prune.CHECKPOINT_TRUNCATE).fetchone()
    if busy:
        note += "; the WAL could not be truncated now (a reader or writer was active)"
    return note
