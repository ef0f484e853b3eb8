"""All SQL of the PostgreSQL store: the schema migrations and every statement, in one place.

Every object lives in one schema of its own (``nanoagent`` unless told otherwise), so a
database shared with other applications is fine. ``{schema}`` below is replaced by the
quoted schema name (see :func:`render`); parameters are psycopg's ``%(name)s``.

Times are ``timestamptz`` and always come from the database's clock (``now()``, the start of
the transaction) unless a test injects a clock: then ``%(now)s`` carries its reading.
JSON is kept as ``text``, exactly as ``json.dumps`` wrote it (as the SQLite store keeps it).

Event ids: every write ends with :data:`FINISH_WRITE`, which takes the row lock of the
single ``counters`` row, allocates the transaction's event ids from it, inserts the events
and notifies listeners. The row lock serializes event-appending transactions until COMMIT,
so ids are gap-free (a rolled-back transaction gives its ids back) and commit in id order:
a reader that has seen id N has seen every lower id. It is taken last and travels in one
simple-protocol message with the COMMIT, so it is held for that statement and the COMMIT
only, never while the server waits for the client (a busy or descheduled worker).

Why a counter row and not a sequence: a sequence hands out numbers outside transactions, so
a rolled-back write leaves a gap and two writers can commit out of order (id 6 visible
before id 5). An advisory transaction lock would serialize the same way; the row also holds
``changes``, the count a reader polls when it cannot listen.
"""

from __future__ import annotations

import re

from nanoagent_core.postgres import sql_approvals, sql_calls
from nanoagent_core.sqltext import fill

#: ``schema_info.application`` of a nanoagent schema.
APPLICATION = "nanoagent"

#: Schema names accepted (unquoted identifiers, short enough for the channel name).
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")

#: The transaction's "now": the injected clock's reading if any, else the database's clock.
NOW = "coalesce(%(now)s::timestamptz, now())"


def render(template: str, schema: str) -> str:
    """``template`` with ``{schema}`` replaced by the (validated, quoted) schema name and
    ``{now}`` by :data:`NOW`."""
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"bad schema name {schema!r}")
    return fill(template, schema=f'"{schema}"', now=NOW)


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a schema (per database, like every channel)."""
    return f"nanoagent:{schema}"


#: A 64-bit key for ``pg_advisory_xact_lock`` while migrating (one per schema name):
#: ``hashtextextended`` is stable across servers of the same major version and up.
MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('nanoagent-migrate:' || %s, 0))"

# -- opening and migrating -----------------------------------------------------------------

#: What is there: (schema exists, schema_info exists, how many tables the schema holds).
INSPECT = (
    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s),"
    " to_regclass(%(info)s) IS NOT NULL,"
    " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))"
)
READ_INFO = "SELECT application, version FROM {schema}.schema_info"

#: Creates the schema and its version table (version 0): run before the migrations.
BOOTSTRAP = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    "CREATE TABLE IF NOT EXISTS {schema}.schema_info ("
    " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    " application text NOT NULL,"
    " version integer NOT NULL)",
    f"INSERT INTO {{schema}}.schema_info (application, version) VALUES ('{APPLICATION}', 0)"
    " ON CONFLICT DO NOTHING",
)
SET_VERSION = "UPDATE {schema}.schema_info SET version = %(version)s"

#: MIGRATIONS[i] takes a schema from version i to i + 1, in the migrating transaction.
#: Append; never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE {schema}.runs (
            run_id             text PRIMARY KEY,
            goal               text NOT NULL,
            max_iterations     integer NOT NULL,
            agent              text NOT NULL,
            agent_options      text NOT NULL DEFAULT '{}',
            phase              text NOT NULL
                CHECK (phase IN ('planning', 'executing', 'reflecting', 'done')),
            iteration          integer NOT NULL DEFAULT 0,
            current_task_id    text,
            status             text NOT NULL
                CHECK (status IN ('running', 'interrupted', 'completed', 'failed', 'aborted')),
            created_at         timestamptz NOT NULL,
            updated_at         timestamptz NOT NULL,
            finished_at        timestamptz,
            owner_host         text,
            owner_pid          integer,
            owner_pid_started  double precision,
            epoch              bigint NOT NULL DEFAULT 0,
            heartbeat_at       timestamptz,
            lease_expires_at   timestamptz,
            abort_requested_at timestamptz,
            error              text,
            result             text,
            tasks_total        integer NOT NULL DEFAULT 0,
            tasks_done         integer NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX runs_by_activity ON {schema}.runs (updated_at DESC)",
        "CREATE INDEX runs_by_status ON {schema}.runs (status, updated_at DESC)",
        """
        CREATE TABLE {schema}.tasks (
            run_id      text NOT NULL REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
            task_id     text NOT NULL,
            seq         integer NOT NULL,
            description text NOT NULL,
            status      text NOT NULL
                CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
            priority    integer NOT NULL CHECK (priority BETWEEN 1 AND 10),
            result      text,
            attempts    integer NOT NULL DEFAULT 0,
            failures    integer NOT NULL DEFAULT 0,
            error       text,
            PRIMARY KEY (run_id, task_id)
        )
        """,
        """
        CREATE TABLE {schema}.results (
            run_id  text NOT NULL,
            task_id text NOT NULL,
            result  text NOT NULL,
            PRIMARY KEY (run_id, task_id),
            FOREIGN KEY (run_id, task_id)
                REFERENCES {schema}.tasks (run_id, task_id) ON DELETE CASCADE
        )
        """,
        """
        CREATE TABLE {schema}.events (
            id     bigint PRIMARY KEY,
            run_id text NOT NULL REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
            ts     timestamptz NOT NULL,
            kind   text NOT NULL,
            data   text NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX events_by_run ON {schema}.events (run_id, id)",
        # The one row whose lock serializes event ids (see the module docstring);
        # ``changes`` counts committed writes, for a poll when notifications are lost.
        """
        CREATE TABLE {schema}.counters (
            singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            last_event_id bigint NOT NULL,
            changes       bigint NOT NULL
        )
        """,
        "INSERT INTO {schema}.counters (last_event_id, changes) VALUES (0, 0)",
    ),
    # 2: insertion order within a run by index, so a new task's seq (max + 1) and the
    # ordered task list no longer scan all of the run's tasks (as SQLite's migration 2).
    ("CREATE INDEX tasks_by_seq ON {schema}.tasks (run_id, seq)",),
    # 3: the conversation journal and the usage ledger: one row per task attempt whose
    # outcome committed (in the same step), and the run's totals kept by difference.
    (
        """
        CREATE TABLE {schema}.attempts (
            run_id     text NOT NULL,
            task_id    text NOT NULL,
            attempt    integer NOT NULL,
            outcome    text NOT NULL CHECK (outcome IN ('done', 'failed')),
            messages   text,
            model      text,
            requests   integer NOT NULL DEFAULT 0,
            tokens_in  bigint NOT NULL DEFAULT 0,
            tokens_out bigint NOT NULL DEFAULT 0,
            cost_usd   double precision,
            seconds    double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, task_id, attempt),
            FOREIGN KEY (run_id, task_id)
                REFERENCES {schema}.tasks (run_id, task_id) ON DELETE CASCADE
        )
        """,
        "ALTER TABLE {schema}.runs ADD COLUMN requests bigint NOT NULL DEFAULT 0,"
        " ADD COLUMN tokens_in bigint NOT NULL DEFAULT 0,"
        " ADD COLUMN tokens_out bigint NOT NULL DEFAULT 0,"
        " ADD COLUMN cost_usd double precision,"
        " ADD COLUMN cost_unknown integer NOT NULL DEFAULT 0",
    ),
    # 4: queued runs (``run --enqueue``, claimed by pool workers), oldest first by index.
    (
        "ALTER TABLE {schema}.runs DROP CONSTRAINT runs_status_check,"
        " ADD CONSTRAINT runs_status_check CHECK (status IN"
        " ('running', 'interrupted', 'completed', 'failed', 'aborted', 'queued'))",
        "CREATE INDEX runs_queued ON {schema}.runs (created_at, run_id) WHERE status = 'queued'",
    ),
    # 5: the status ``paused`` with its reason and detail, and the run's budget; an attempt's
    # outcome may name the pause that cut it (as SQLite's migration 5, which must rebuild its
    # tables for the same).
    (
        "ALTER TABLE {schema}.runs DROP CONSTRAINT runs_status_check,"
        " ADD CONSTRAINT runs_status_check CHECK (status IN ('running', 'interrupted',"
        " 'completed', 'failed', 'aborted', 'paused', 'queued')),"
        " ADD COLUMN pause_reason text, ADD COLUMN pause_detail text,"
        " ADD COLUMN max_tokens bigint CHECK (max_tokens >= 1),"
        " ADD COLUMN max_cost_usd double precision CHECK (max_cost_usd > 0),"
        " ADD CONSTRAINT runs_pause_reason_check"
        " CHECK ((status = 'paused') = (pause_reason IS NOT NULL))",
        "ALTER TABLE {schema}.attempts DROP CONSTRAINT attempts_outcome_check,"
        " ADD CONSTRAINT attempts_outcome_check"
        " CHECK (outcome IN ('done', 'failed', 'budget', 'approval'))",
    ),
    # 6: approval requests (sql_approvals.py)
    sql_approvals.MIGRATION,
    # 7: the planner's and reflector's journal (sql_calls.py)
    sql_calls.MIGRATION,
)

SCHEMA_VERSION = len(MIGRATIONS)

#: Per session: times come back in UTC; a session that stalls inside a transaction (a
#: frozen worker) is ended by the server, so it cannot hold the event lock for long.
CONFIGURE_SESSION = "SET TIME ZONE 'UTC'; SET idle_in_transaction_session_timeout = {idle_ms}"

# -- every write ends with this ----------------------------------------------------------------

#: Sent right after BEGIN: the transaction's id, to learn the outcome of a COMMIT whose
#: answer was lost with the connection (see XACT_STATUS), and when the server started (an
#: id is the server's last word on its transaction only while the server has not restarted).
CURRENT_XID = "SELECT pg_current_xact_id()::text, pg_postmaster_start_time()"

#: Allocate ``%(n)s`` event ids under the counters row lock, insert the events, count the
#: change, notify listeners; returns the last id and the time stamped. Sent in one message
#: with COMMIT, so the lock is held for server-side work only.
FINISH_WRITE = (
    "WITH c AS ("
    "  UPDATE {schema}.counters SET last_event_id = last_event_id + %(n)s,"
    "  changes = changes + 1 RETURNING last_event_id"
    "), e AS ("
    "  INSERT INTO {schema}.events (id, run_id, ts, kind, data)"
    "  SELECT c.last_event_id - %(n)s + e.ord, %(run_id)s, {now}, e.kind, e.data"
    "  FROM c CROSS JOIN unnest(%(kinds)s::text[], %(datas)s::text[])"
    "    WITH ORDINALITY AS e (kind, data, ord)"
    "  RETURNING id"
    ") SELECT c.last_event_id, {now},"
    "  pg_notify(%(channel)s, %(run_id)s)"
    " FROM c"
)

#: What became of a transaction (by its id): 'committed', 'aborted', 'in progress', NULL when
#: too old to tell, or 'future' when the id is not handed out yet (the transaction was lost
#: in a crash before any of its WAL reached the disk); and when the server started.
XACT_STATUS = (
    "SELECT CASE WHEN %(xid)s::text::xid8 < pg_snapshot_xmax(pg_current_snapshot())"
    " THEN pg_xact_status(%(xid)s::text::xid8) ELSE 'future' END, pg_postmaster_start_time()"
)
#: Whether the transaction of (32-bit) id ``%(xid32)s`` wrote this event: after a restart,
#: tells a transaction that committed before the crash from a later one given the same id.
EVENT_OF_XID = (
    "SELECT EXISTS (SELECT 1 FROM {schema}.events WHERE run_id = %(run_id)s"
    " AND xmin::text = %(xid32)s AND kind = %(kind)s AND data = %(data)s)"
)
#: The event a transaction wrote, found by the transaction's (32-bit) id: the answer of an
#: append whose COMMIT landed but whose answer was lost.
EVENT_BY_XID = (
    "SELECT id, run_id, ts, kind, data FROM {schema}.events"
    " WHERE run_id = %(run_id)s AND xmin::text = %(xid32)s ORDER BY id DESC LIMIT 1"
)
POLL_CHANGES = "SELECT changes FROM {schema}.counters"

# -- runs ------------------------------------------------------------------------------------

RUN_COLUMNS = (
    "run_id, goal, max_iterations, agent, agent_options, phase, iteration, current_task_id,"
    " status, created_at, updated_at, finished_at, owner_host, owner_pid, owner_pid_started,"
    " epoch, heartbeat_at, lease_expires_at, abort_requested_at, error, result,"
    " tasks_total, tasks_done, requests, tokens_in, tokens_out, cost_usd, cost_unknown,"
    " pause_reason, pause_detail, max_tokens, max_cost_usd"
)

#: Nothing is returned when the run id is taken. The lease a run is created with is given
#: as a duration from now (the creator's clock is not the database's).
INSERT_RUN = (
    f"INSERT INTO {{schema}}.runs ({RUN_COLUMNS}) VALUES"
    " (%(run_id)s, %(goal)s, %(max_iterations)s, %(agent)s, %(agent_options)s, %(phase)s,"
    " %(iteration)s, %(current_task_id)s, %(status)s, {now}, {now}, %(finished_at)s,"
    " %(owner_host)s, %(owner_pid)s, %(owner_pid_started)s, %(epoch)s, %(heartbeat_at)s,"
    " {now} + %(lease)s::interval, %(abort_requested_at)s, %(error)s, %(result)s, 0, 0,"
    " 0, 0, 0, NULL, 0, %(pause_reason)s, %(pause_detail)s, %(max_tokens)s,"
    " %(max_cost_usd)s)"
    f" ON CONFLICT (run_id) DO NOTHING RETURNING {RUN_COLUMNS}"
)

SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM {{schema}}.runs WHERE run_id = %(run_id)s"
RUN_EXISTS = "SELECT 1 FROM {schema}.runs WHERE run_id = %(run_id)s"

#: The runs among ``%(run_ids)s``, in that order (unknown ids skipped).
SELECT_RUNS = (
    f"SELECT {', '.join('r.' + c.strip() for c in RUN_COLUMNS.split(','))}"
    " FROM unnest(%(run_ids)s::text[]) WITH ORDINALITY AS wanted (run_id, ord)"
    " JOIN {schema}.runs r ON r.run_id = wanted.run_id ORDER BY wanted.ord"
)

# list_runs: the WHERE clause is assembled from these fragments only. Ties in activity go
# by run id in byte order, as in the other stores.
LIST_RUNS = (
    f"SELECT {RUN_COLUMNS} FROM {{schema}}.runs {{where}}"
    ' ORDER BY updated_at DESC, run_id COLLATE "C" LIMIT %(limit)s OFFSET %(offset)s'
)
WHERE_STATUS_IN = "status = ANY(%(statuses)s::text[])"
WHERE_TEXT = "(run_id ILIKE %(pattern)s ESCAPE '\\' OR goal ILIKE %(pattern)s ESCAPE '\\')"

COUNT_RUNS = "SELECT status, count(*) FROM {schema}.runs GROUP BY status"

UPDATE_POSITION = (
    "UPDATE {schema}.runs SET phase = %(phase)s, iteration = %(iteration)s,"
    " current_task_id = %(current_task_id)s, updated_at = {now}"
    f" WHERE run_id = %(run_id)s AND epoch = %(epoch)s RETURNING {RUN_COLUMNS}"
)

#: The fence of a step: the run row stays locked (against claims) until COMMIT. NO KEY
#: UPDATE, not UPDATE: it must not block foreign-key checks of others' event inserts.
LOCK_EPOCH = "SELECT epoch FROM {schema}.runs WHERE run_id = %(run_id)s FOR NO KEY UPDATE"
SELECT_EPOCH = "SELECT epoch FROM {schema}.runs WHERE run_id = %(run_id)s"

# One statement ends a step: fenced by epoch, returns the run as it now stands.
FINISH_STEP = (
    "UPDATE {schema}.runs SET phase = %(phase)s, iteration = %(iteration)s,"
    " current_task_id = %(current_task_id)s, updated_at = {now},"
    " status = coalesce(%(status)s, status),"
    " result = CASE WHEN %(status)s::text IS NULL THEN result ELSE %(result)s END,"
    " error = CASE WHEN %(status)s::text IS NULL THEN error ELSE %(error)s END,"
    " pause_reason = CASE WHEN %(status)s::text IS NULL THEN pause_reason"
    "   ELSE %(pause_reason)s END,"
    " pause_detail = CASE WHEN %(status)s::text IS NULL THEN pause_detail"
    "   ELSE %(pause_detail)s END,"
    " finished_at = CASE WHEN %(finished)s THEN {now} ELSE finished_at END,"
    " owner_host = CASE WHEN %(release)s THEN NULL ELSE owner_host END,"
    " owner_pid = CASE WHEN %(release)s THEN NULL ELSE owner_pid END,"
    " owner_pid_started = CASE WHEN %(release)s THEN NULL ELSE owner_pid_started END,"
    " lease_expires_at = CASE WHEN %(release)s THEN NULL ELSE lease_expires_at END,"
    " requests = requests + %(requests)s, tokens_in = tokens_in + %(tokens_in)s,"
    " tokens_out = tokens_out + %(tokens_out)s,"
    " cost_unknown = cost_unknown + %(cost_unknown)s,"
    " cost_usd = CASE WHEN %(cost)s::float8 IS NULL THEN cost_usd"
    "   ELSE coalesce(cost_usd, 0) + %(cost)s::float8 END"
    f" WHERE run_id = %(run_id)s AND epoch = %(epoch)s RETURNING {RUN_COLUMNS}"
)

# Run just before tasks are upserted: moves the run's task counters by what the upsert will
# change (%(ids)s, the distinct ids to upsert, %(done)s of them upserted as done), judged
# against the rows as they are now. Costs a lookup per id, not a scan of the run.
COUNT_TASK_CHANGES = (
    "UPDATE {schema}.runs SET"
    " tasks_total = tasks_total + cardinality(%(ids)s::text[]) - (SELECT count(*)"
    "   FROM {schema}.tasks WHERE run_id = %(run_id)s AND task_id = ANY(%(ids)s::text[])),"
    " tasks_done = tasks_done + %(done)s - (SELECT count(*) FROM {schema}.tasks"
    "   WHERE run_id = %(run_id)s AND task_id = ANY(%(ids)s::text[]) AND status = 'done')"
    " WHERE run_id = %(run_id)s"
)

# -- ownership -------------------------------------------------------------------------------

#: ``%(owner_gone)s`` (the caller found the owner's process dead) counts only for an owner
#: on the caller's own host: elsewhere only the lease, by the database's clock, frees a run.
CLAIM_RUN = (
    "UPDATE {schema}.runs SET owner_host = %(host)s, owner_pid = %(pid)s,"
    " owner_pid_started = %(pid_started)s, epoch = epoch + 1, status = 'running',"
    " heartbeat_at = {now}, lease_expires_at = {now} + %(lease)s::interval,"
    " abort_requested_at = NULL, finished_at = NULL, error = NULL, updated_at = {now},"
    " pause_reason = NULL, pause_detail = NULL"
    " WHERE run_id = %(run_id)s AND epoch = %(expected_epoch)s AND status <> 'completed'"
    " AND (status <> 'running' OR owner_pid IS NULL OR lease_expires_at IS NULL"
    "      OR lease_expires_at <= {now} OR (%(owner_gone)s AND owner_host = %(host)s))"
    f" RETURNING {RUN_COLUMNS}"
)

RENEW_LEASE = (
    "UPDATE {schema}.runs SET heartbeat_at = {now}, lease_expires_at = {now} + %(lease)s::interval"
    " WHERE run_id = %(run_id)s AND epoch = %(epoch)s AND status = 'running'"
    f" RETURNING {RUN_COLUMNS}"
)

REQUEST_ABORT = (
    "UPDATE {schema}.runs SET abort_requested_at = {now}, updated_at = {now}"
    " WHERE run_id = %(run_id)s AND abort_requested_at IS NULL"
    " AND status NOT IN ('completed', 'failed', 'aborted')"
)

ABORT_UNOWNED = (
    "UPDATE {schema}.runs SET status = 'aborted', epoch = epoch + 1, owner_host = NULL,"
    " owner_pid = NULL, owner_pid_started = NULL, lease_expires_at = NULL,"
    " abort_requested_at = coalesce(abort_requested_at, {now}), finished_at = {now},"
    " updated_at = {now}, error = %(reason)s, pause_reason = NULL, pause_detail = NULL"
    " WHERE run_id = %(run_id)s AND epoch = %(expected_epoch)s"
    " AND status NOT IN ('completed', 'failed', 'aborted')"
    f" RETURNING {RUN_COLUMNS}"
)

SET_BUDGET = (
    "UPDATE {schema}.runs SET max_tokens = %(max_tokens)s, max_cost_usd = %(max_cost_usd)s,"
    " updated_at = {now} WHERE run_id = %(run_id)s AND epoch = %(epoch)s AND status = 'running'"
    f" RETURNING {RUN_COLUMNS}"
)

# -- tasks and results -----------------------------------------------------------------------

TASK_COLUMNS = "task_id, description, status, priority, result, attempts, failures, error, seq"

#: A new task takes the next ``seq`` of its run; a known one keeps its own.
UPSERT_TASK = (
    "INSERT INTO {schema}.tasks (run_id, task_id, seq, description, status, priority, result,"
    " attempts, failures, error) VALUES (%(run_id)s, %(task_id)s,"
    " (SELECT coalesce(max(seq) + 1, 0) FROM {schema}.tasks WHERE run_id = %(run_id)s),"
    " %(description)s, %(status)s, %(priority)s, %(result)s, %(attempts)s, %(failures)s,"
    " %(error)s)"
    " ON CONFLICT (run_id, task_id) DO UPDATE SET description = excluded.description,"
    " status = excluded.status, priority = excluded.priority, result = excluded.result,"
    " attempts = excluded.attempts, failures = excluded.failures, error = excluded.error"
)

SELECT_TASKS = f"SELECT {TASK_COLUMNS} FROM {{schema}}.tasks WHERE run_id = %(run_id)s ORDER BY seq"
SELECT_PENDING_TASKS = (
    f"SELECT {TASK_COLUMNS} FROM {{schema}}.tasks WHERE run_id = %(run_id)s"
    " AND status = 'pending' ORDER BY priority DESC, seq"
)

#: The first of ``%(task_ids)s`` the run has no task for (a result needs its task).
MISSING_TASK = (
    "SELECT wanted.task_id FROM unnest(%(task_ids)s::text[]) WITH ORDINALITY"
    "   AS wanted (task_id, ord)"
    " WHERE NOT EXISTS (SELECT 1 FROM {schema}.tasks t"
    "   WHERE t.run_id = %(run_id)s AND t.task_id = wanted.task_id)"
    " ORDER BY wanted.ord LIMIT 1"
)

# -- the journal -----------------------------------------------------------------------------

INSERT_ATTEMPT = (
    "INSERT INTO {schema}.attempts (run_id, task_id, attempt, outcome, messages, model,"
    " requests, tokens_in, tokens_out, cost_usd, seconds) VALUES (%(run_id)s, %(task_id)s,"
    " %(attempt)s, %(outcome)s, %(messages)s, %(model)s, %(requests)s, %(tokens_in)s,"
    " %(tokens_out)s, %(cost_usd)s, %(seconds)s)"
)
#: The first of the (task, attempt) pairs already in the journal.
ATTEMPT_TAKEN = (
    "SELECT a.task_id, a.attempt FROM {schema}.attempts a"
    " JOIN unnest(%(task_ids)s::text[], %(attempts)s::int[]) AS w (task_id, attempt)"
    " ON a.task_id = w.task_id AND a.attempt = w.attempt WHERE a.run_id = %(run_id)s LIMIT 1"
)
SELECT_ATTEMPTS = (
    "SELECT a.task_id, a.attempt, a.outcome, a.messages, a.model, a.requests, a.tokens_in,"
    " a.tokens_out, a.cost_usd, a.seconds FROM {schema}.attempts a JOIN {schema}.tasks t"
    " ON t.run_id = a.run_id AND t.task_id = a.task_id WHERE a.run_id = %(run_id)s"
    " ORDER BY t.seq, a.attempt"
)

UPSERT_RESULTS = (
    "INSERT INTO {schema}.results (run_id, task_id, result)"
    " SELECT %(run_id)s, r.task_id, r.result"
    " FROM unnest(%(task_ids)s::text[], %(texts)s::text[]) AS r (task_id, result)"
    " ON CONFLICT (run_id, task_id) DO UPDATE SET result = excluded.result"
)
SELECT_RESULTS = (
    "SELECT r.task_id, r.result FROM {schema}.results r JOIN {schema}.tasks t"
    " ON t.run_id = r.run_id AND t.task_id = r.task_id WHERE r.run_id = %(run_id)s"
    " ORDER BY t.seq"
)
TOUCH_RUN = (
    "UPDATE {schema}.runs SET updated_at = {now} WHERE run_id = %(run_id)s AND epoch = %(epoch)s"
)

# -- events ----------------------------------------------------------------------------------

SELECT_EVENTS = (
    "SELECT id, run_id, ts, kind, data FROM {schema}.events WHERE id > %(after_id)s"
    " ORDER BY id LIMIT %(limit)s"
)
#: One look at the end of the primary key index.
LAST_EVENT_ID = "SELECT coalesce(max(id), 0) FROM {schema}.events"
SELECT_RUN_EVENTS = (
    "SELECT id, run_id, ts, kind, data FROM {schema}.events"
    " WHERE run_id = %(run_id)s AND id > %(after_id)s ORDER BY id LIMIT %(limit)s"
)
