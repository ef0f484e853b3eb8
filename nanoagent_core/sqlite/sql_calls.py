"""The planner's and reflector's journal in the SQLite store (sql.py, split for size; the
same conventions)."""

from __future__ import annotations

__all__ = ["CALL_COLUMNS", "INSERT_CALL", "MIGRATION", "SELECT_CALLS"]

#: schema version 7: the planner's and reflector's calls, journaled as task attempts are (one
#: row per call whose outcome committed, in the same step; the ledger counts them). Keyed by
#: role, iteration and the call's number at that iteration (a plan cut short by the budget is
#: asked again on resume). A new table referencing runs only: nothing is rebuilt. A rowid
#: table: ``messages`` can be large.
MIGRATION: tuple[str, ...] = (
    """
    CREATE TABLE model_calls (
        run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        role       TEXT NOT NULL CHECK (role IN ('planner', 'reflector')),
        iteration  INTEGER NOT NULL CHECK (iteration >= 0),
        call       INTEGER NOT NULL CHECK (call >= 1),
        outcome    TEXT NOT NULL CHECK (outcome IN ('done', 'failed', 'budget', 'approval')),
        messages   TEXT,
        model      TEXT,
        requests   INTEGER NOT NULL DEFAULT 0,
        tokens_in  INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        cost_usd   REAL,
        seconds    REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, role, iteration, call)
    ) STRICT
    """,
)

CALL_COLUMNS = (
    "role, iteration, call, outcome, messages, model, requests, tokens_in, tokens_out,"
    " cost_usd, seconds"
)
#: numbered here, under the write lock: the next number of the role at the iteration
INSERT_CALL = (
    f"INSERT INTO model_calls (run_id, {CALL_COLUMNS}) VALUES (:run_id, :role, :iteration,"
    " (SELECT coalesce(max(call), 0) + 1 FROM model_calls"
    "  WHERE run_id = :run_id AND role = :role AND iteration = :iteration),"
    " :outcome, :messages, :model, :requests, :tokens_in, :tokens_out, :cost_usd, :seconds)"
)
SELECT_CALLS = (
    f"SELECT {CALL_COLUMNS} FROM model_calls WHERE run_id = ?"
    " ORDER BY iteration, role = 'reflector', call"
)
