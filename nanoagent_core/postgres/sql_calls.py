"""The planner's and reflector's journal in the PostgreSQL store (sql.py, split for size;
the same templates: ``{schema}``, named parameters)."""

from __future__ import annotations

__all__ = ["CALL_COLUMNS", "INSERT_CALL", "MIGRATION", "SELECT_CALLS"]

#: schema version 7: the planner's and reflector's calls, as SQLite's migration 7 (see
#: sqlite/sql_calls.py): one row per call whose outcome committed, in the same step.
MIGRATION: tuple[str, ...] = (
    """
    CREATE TABLE {schema}.model_calls (
        run_id     text NOT NULL REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
        role       text NOT NULL CHECK (role IN ('planner', 'reflector')),
        iteration  integer NOT NULL CHECK (iteration >= 0),
        call       integer NOT NULL CHECK (call >= 1),
        outcome    text NOT NULL CHECK (outcome IN ('done', 'failed', 'budget', 'approval')),
        messages   text,
        model      text,
        requests   integer NOT NULL DEFAULT 0,
        tokens_in  bigint NOT NULL DEFAULT 0,
        tokens_out bigint NOT NULL DEFAULT 0,
        cost_usd   double precision,
        seconds    double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, role, iteration, call)
    )
    """,
)

CALL_COLUMNS = (
    "role, iteration, call, outcome, messages, model, requests, tokens_in, tokens_out,"
    " cost_usd, seconds"
)
#: numbered here, under the run row's lock (the step's fence): the role's next number at
#: the iteration
INSERT_CALL = (
    f"INSERT INTO {{schema}}.model_calls (run_id, {CALL_COLUMNS}) VALUES (%(run_id)s,"
    " %(role)s, %(iteration)s, (SELECT coalesce(max(call), 0) + 1 FROM {schema}.model_calls"
    "  WHERE run_id = %(run_id)s AND role = %(role)s AND iteration = %(iteration)s),"
    " %(outcome)s, %(messages)s, %(model)s, %(requests)s, %(tokens_in)s, %(tokens_out)s,"
    " %(cost_usd)s, %(seconds)s)"
)
SELECT_CALLS = (
    f"SELECT {CALL_COLUMNS} FROM {{schema}}.model_calls WHERE run_id = %(run_id)s"
    " ORDER BY iteration, role = 'reflector', call"
)
