"""The approval requests' SQL of the PostgreSQL store (sql.py, split for size; the same
templates: ``{schema}`` and ``{now}``, named parameters)."""

from __future__ import annotations

__all__ = [
    "DECIDE_APPROVAL",
    "EXPIRE_APPROVALS",
    "INSERT_APPROVAL",
    "MIGRATION",
    "SELECT_APPROVALS",
    "SELECT_APPROVAL_FOR_UPDATE",
    "TOUCH_RUN_ANY",
]

#: schema version 6: approval requests (approvals.py), as SQLite's migration 6
MIGRATION: tuple[str, ...] = (
    """
    CREATE TABLE {schema}.approvals (
        run_id       text NOT NULL REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
        request_id   text NOT NULL,
        seq          integer NOT NULL,
        task_id      text NOT NULL,
        attempt      integer NOT NULL,
        what         text NOT NULL,
        arguments    text NOT NULL,
        why          text NOT NULL,
        digest       text NOT NULL,
        decision     text NOT NULL
            CHECK (decision IN ('pending', 'approved', 'denied', 'expired')),
        reason       text,
        requested_at timestamptz NOT NULL,
        decided_at   timestamptz,
        messages     text,
        PRIMARY KEY (run_id, request_id)
    )
    """,
)

APPROVAL_COLUMNS = (
    "request_id, run_id, task_id, attempt, what, arguments, why, digest, decision, reason,"
    " requested_at, decided_at, messages"
)
INSERT_APPROVAL = (
    "INSERT INTO {schema}.approvals (run_id, request_id, seq, task_id, attempt, what,"
    " arguments, why, digest, decision, reason, requested_at, decided_at, messages)"
    " VALUES (%(run_id)s, %(request_id)s, (SELECT coalesce(max(seq) + 1, 0)"
    " FROM {schema}.approvals WHERE run_id = %(run_id)s), %(task_id)s, %(attempt)s, %(what)s,"
    " %(arguments)s, %(why)s, %(digest)s, 'pending', NULL, {now}, NULL, %(messages)s)"
    " ON CONFLICT (run_id, request_id) DO NOTHING"
)
EXPIRE_APPROVALS = (
    "UPDATE {schema}.approvals SET decision = 'expired', decided_at = {now}"
    " WHERE run_id = %(run_id)s AND decision = 'pending' AND request_id != %(request_id)s"
)
SELECT_APPROVALS = (
    f"SELECT {APPROVAL_COLUMNS} FROM {{schema}}.approvals WHERE run_id = %(run_id)s ORDER BY seq"
)
SELECT_APPROVAL_FOR_UPDATE = (
    f"SELECT {APPROVAL_COLUMNS} FROM {{schema}}.approvals"
    " WHERE run_id = %(run_id)s AND request_id = %(request_id)s FOR UPDATE"
)
DECIDE_APPROVAL = (
    "UPDATE {schema}.approvals SET decision = %(decision)s, reason = %(reason)s,"
    " decided_at = {now} WHERE run_id = %(run_id)s AND request_id = %(request_id)s"
    f" AND decision = 'pending' RETURNING {APPROVAL_COLUMNS}"
)
TOUCH_RUN_ANY = "UPDATE {schema}.runs SET updated_at = {now} WHERE run_id = %(run_id)s"
