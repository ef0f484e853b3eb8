"""All SQL of the SQLite store: the schema migrations and every statement, in one place.

Templates name their fragments ``{name}``, filled by :func:`nanoagent_core.sqltext.fill`.

Times are stored as REAL seconds since the Unix epoch (UTC); JSON as TEXT.
"""

from __future__ import annotations

from nanoagent_core.sqlite import sql_calls

#: ``PRAGMA application_id`` of a nanoagent database ("nano").
APPLICATION_ID = 0x6E616E6F

#: MIGRATIONS[i] takes a database from ``user_version`` i to i + 1, one statement at a time,
#: in the migrating transaction. Append; never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE runs (
            run_id             TEXT PRIMARY KEY,
            goal               TEXT NOT NULL,
            max_iterations     INTEGER NOT NULL,
            agent              TEXT NOT NULL,
            agent_options      TEXT NOT NULL DEFAULT '{}',
            phase              TEXT NOT NULL
                CHECK (phase IN ('planning', 'executing', 'reflecting', 'done')),
            iteration          INTEGER NOT NULL DEFAULT 0,
            current_task_id    TEXT,
            status             TEXT NOT NULL
                CHECK (status IN ('running', 'interrupted', 'completed', 'failed', 'aborted')),
            created_at         REAL NOT NULL,
            updated_at         REAL NOT NULL,
            finished_at        REAL,
            owner_host         TEXT,
            owner_pid          INTEGER,
            owner_pid_started  REAL,
            epoch              INTEGER NOT NULL DEFAULT 0,
            heartbeat_at       REAL,
            lease_expires_at   REAL,
            abort_requested_at REAL,
            error              TEXT,
            result             TEXT,
            tasks_total        INTEGER NOT NULL DEFAULT 0,
            tasks_done         INTEGER NOT NULL DEFAULT 0
        ) STRICT
        """,
        "CREATE INDEX runs_by_activity ON runs (updated_at DESC)",
        "CREATE INDEX runs_by_status ON runs (status, updated_at DESC)",
        """
        CREATE TABLE tasks (
            run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            task_id     TEXT NOT NULL,
            seq         INTEGER NOT NULL,
            description TEXT NOT NULL,
            status      TEXT NOT NULL
                CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
            priority    INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 10),
            result      TEXT,
            attempts    INTEGER NOT NULL DEFAULT 0,
            failures    INTEGER NOT NULL DEFAULT 0,
            error       TEXT,
            PRIMARY KEY (run_id, task_id)
        ) STRICT, WITHOUT ROWID
        """,
        """
        CREATE TABLE results (
            run_id  TEXT NOT NULL,
            task_id TEXT NOT NULL,
            result  TEXT NOT NULL,
            PRIMARY KEY (run_id, task_id),
            FOREIGN KEY (run_id, task_id) REFERENCES tasks (run_id, task_id) ON DELETE CASCADE
        ) STRICT, WITHOUT ROWID
        """,
        """
        CREATE TABLE events (
            id     INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            ts     REAL NOT NULL,
            kind   TEXT NOT NULL,
            data   TEXT NOT NULL DEFAULT '{}'
        ) STRICT
        """,
        "CREATE INDEX events_by_run ON events (run_id, id)",
    ),
    # 2: insertion order within a run by index, so a new task's seq (max + 1) and the
    # ordered task list no longer scan all of the run's tasks.
    ("CREATE INDEX tasks_by_seq ON tasks (run_id, seq)",),
    # 3: the conversation journal and the usage ledger: one row per task attempt whose
    # outcome committed (in the same step), and the run's totals kept by difference. A rowid
    # table: its rows (the messages) are large, which WITHOUT ROWID handles badly.
    (
        """
        CREATE TABLE attempts (
            run_id     TEXT NOT NULL,
            task_id    TEXT NOT NULL,
            attempt    INTEGER NOT NULL,
            outcome    TEXT NOT NULL CHECK (outcome IN ('done', 'failed')),
            messages   TEXT,
            model      TEXT,
            requests   INTEGER NOT NULL DEFAULT 0,
            tokens_in  INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            cost_usd   REAL,
            seconds    REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, task_id, attempt),
            FOREIGN KEY (run_id, task_id) REFERENCES tasks (run_id, task_id) ON DELETE CASCADE
        ) STRICT
        """,
        "ALTER TABLE runs ADD COLUMN requests INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN tokens_in INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN tokens_out INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN cost_usd REAL",
        "ALTER TABLE runs ADD COLUMN cost_unknown INTEGER NOT NULL DEFAULT 0",
    ),
    # 4: queued runs (``run --enqueue``, claimed by pool workers). The status CHECK only
    # widens (every stored row still passes), so the table's text is edited in place, as
    # SQLite documents for such changes, instead of rebuilding a table others reference;
    # RESET makes this connection read the edited schema again, and the index creation
    # bumps the schema version for every other connection. Oldest first, by index.
    (
        "PRAGMA writable_schema = ON",
        "UPDATE sqlite_schema SET sql = replace(sql, '''aborted'')', '''aborted'', ''queued'')')"
        " WHERE type = 'table' AND name = 'runs'",
        "PRAGMA writable_schema = RESET",
        "CREATE INDEX runs_queued ON runs (created_at, run_id) WHERE status = 'queued'",
    ),
    # 5: the status ``paused`` with its reason and detail, and the run's budget. SQLite cannot
    # change a CHECK constraint, so runs (and attempts, whose outcome may now name the pause
    # that cut it) are rebuilt: the documented 12-step way, run with foreign_keys OFF (see
    # schema._migrate, which then runs PRAGMA foreign_key_check before committing): a table
    # CHECK that ties the reason to the status is added, which an in-place edit (as 4) must not
    # do. A pause reason is text (more reasons will come); it is set exactly when paused.
    (
        """
        CREATE TABLE runs_v5 (
            run_id             TEXT PRIMARY KEY,
            goal               TEXT NOT NULL,
            max_iterations     INTEGER NOT NULL,
            agent              TEXT NOT NULL,
            agent_options      TEXT NOT NULL DEFAULT '{}',
            phase              TEXT NOT NULL
                CHECK (phase IN ('planning', 'executing', 'reflecting', 'done')),
            iteration          INTEGER NOT NULL DEFAULT 0,
            current_task_id    TEXT,
            status             TEXT NOT NULL
                CHECK (status IN ('running', 'interrupted', 'completed', 'failed', 'aborted',
                                  'paused', 'queued')),
            created_at         REAL NOT NULL,
            updated_at         REAL NOT NULL,
            finished_at        REAL,
            owner_host         TEXT,
            owner_pid          INTEGER,
            owner_pid_started  REAL,
            epoch              INTEGER NOT NULL DEFAULT 0,
            heartbeat_at       REAL,
            lease_expires_at   REAL,
            abort_requested_at REAL,
            error              TEXT,
            result             TEXT,
            tasks_total        INTEGER NOT NULL DEFAULT 0,
            tasks_done         INTEGER NOT NULL DEFAULT 0,
            requests           INTEGER NOT NULL DEFAULT 0,
            tokens_in          INTEGER NOT NULL DEFAULT 0,
            tokens_out         INTEGER NOT NULL DEFAULT 0,
            cost_usd           REAL,
            cost_unknown       INTEGER NOT NULL DEFAULT 0,
            pause_reason       TEXT,
            pause_detail       TEXT,
            max_tokens         INTEGER CHECK (max_tokens >= 1),
            max_cost_usd       REAL CHECK (max_cost_usd > 0),
            CHECK ((status = 'paused') = (pause_reason IS NOT NULL))
        ) STRICT
        """,
        "INSERT INTO runs_v5 (run_id, goal, max_iterations, agent, agent_options, phase,"
        " iteration, current_task_id, status, created_at, updated_at, finished_at, owner_host,"
        " owner_pid, owner_pid_started, epoch, heartbeat_at, lease_expires_at,"
        " abort_requested_at, error, result, tasks_total, tasks_done, requests, tokens_in,"
        " tokens_out, cost_usd, cost_unknown)"
        " SELECT run_id, goal, max_iterations, agent, agent_options, phase,"
        " iteration, current_task_id, status, created_at, updated_at, finished_at, owner_host,"
        " owner_pid, owner_pid_started, epoch, heartbeat_at, lease_expires_at,"
        " abort_requested_at, error, result, tasks_total, tasks_done, requests, tokens_in,"
        " tokens_out, cost_usd, cost_unknown FROM runs",
        "DROP TABLE runs",
        "ALTER TABLE runs_v5 RENAME TO runs",
        "CREATE INDEX runs_by_activity ON runs (updated_at DESC)",
        "CREATE INDEX runs_by_status ON runs (status, updated_at DESC)",
        "CREATE INDEX runs_queued ON runs (created_at, run_id) WHERE status = 'queued'",
        """
        CREATE TABLE attempts_v5 (
            run_id     TEXT NOT NULL,
            task_id    TEXT NOT NULL,
            attempt    INTEGER NOT NULL,
            outcome    TEXT NOT NULL CHECK (outcome IN ('done', 'failed', 'budget', 'approval')),
            messages   TEXT,
            model      TEXT,
            requests   INTEGER NOT NULL DEFAULT 0,
            tokens_in  INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            cost_usd   REAL,
            seconds    REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, task_id, attempt),
            FOREIGN KEY (run_id, task_id) REFERENCES tasks (run_id, task_id) ON DELETE CASCADE
        ) STRICT
        """,
        "INSERT INTO attempts_v5 SELECT * FROM attempts",
        "DROP TABLE attempts",
        "ALTER TABLE attempts_v5 RENAME TO attempts",
    ),
    # 6: approval requests (approvals.py): recorded in the step that pauses the run, decided
    # once by a person. A rowid table: ``messages`` (a conversation) can be large.
    (
        """
        CREATE TABLE approvals (
            run_id       TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            request_id   TEXT NOT NULL,
            seq          INTEGER NOT NULL,
            task_id      TEXT NOT NULL,
            attempt      INTEGER NOT NULL,
            what         TEXT NOT NULL,
            arguments    TEXT NOT NULL,
            why          TEXT NOT NULL,
            digest       TEXT NOT NULL,
            decision     TEXT NOT NULL
                CHECK (decision IN ('pending', 'approved', 'denied', 'expired')),
            reason       TEXT,
            requested_at REAL NOT NULL,
            decided_at   REAL,
            messages     TEXT,
            PRIMARY KEY (run_id, request_id)
        ) STRICT
        """,
    ),
    # 7: the planner's and reflector's journal (sql_calls.py)
    sql_calls.MIGRATION,
)

SCHEMA_VERSION = len(MIGRATIONS)

# -- opening -------------------------------------------------------------------------------

READ_HEADER = (
    "SELECT (SELECT application_id FROM pragma_application_id), "
    "(SELECT user_version FROM pragma_user_version), "
    "(SELECT count(*) FROM sqlite_master)"
)
SET_VERSION = "PRAGMA user_version = {version}"
FOREIGN_KEYS_OFF = "PRAGMA foreign_keys = OFF"
FOREIGN_KEYS_ON = "PRAGMA foreign_keys = ON"
FOREIGN_KEY_CHECK = "PRAGMA foreign_key_check"
SET_APPLICATION_ID = f"PRAGMA application_id = {APPLICATION_ID:d}"
DATA_VERSION = "PRAGMA data_version"
BUSY_TIMEOUT = "PRAGMA busy_timeout"
SET_BUSY_TIMEOUT = "PRAGMA busy_timeout = {ms}"
SET_BUSY_TIMEOUT_0 = "PRAGMA busy_timeout = 0"

# -- runs ----------------------------------------------------------------------------------

RUN_COLUMNS = (
    "run_id, goal, max_iterations, agent, agent_options, phase, iteration, current_task_id,"
    " status, created_at, updated_at, finished_at, owner_host, owner_pid, owner_pid_started,"
    " epoch, heartbeat_at, lease_expires_at, abort_requested_at, error, result,"
    " tasks_total, tasks_done, requests, tokens_in, tokens_out, cost_usd, cost_unknown,"
    " pause_reason, pause_detail, max_tokens, max_cost_usd"
)

INSERT_RUN = (
    f"INSERT INTO runs ({RUN_COLUMNS}) VALUES "
    "(:run_id, :goal, :max_iterations, :agent, :agent_options, :phase, :iteration,"
    " :current_task_id, :status, :created_at, :updated_at, :finished_at, :owner_host,"
    " :owner_pid, :owner_pid_started, :epoch, :heartbeat_at, :lease_expires_at,"
    " :abort_requested_at, :error, :result, 0, 0, 0, 0, 0, NULL, 0, :pause_reason,"
    " :pause_detail, :max_tokens, :max_cost_usd)"
)

SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?"

# list_runs: the WHERE clause is assembled from these fragments only.
LIST_RUNS = (
    f"SELECT {RUN_COLUMNS} FROM runs {{where}} ORDER BY updated_at DESC, run_id LIMIT ? OFFSET ?"
)
WHERE_STATUS_IN = "status IN ({marks})"
# nanoagent_fold: store_rules.fold, registered on each connection (SQLite's own LIKE ignores
# case for ASCII only); the pattern is folded the same way.
WHERE_TEXT = (
    "(nanoagent_fold(run_id) LIKE ? ESCAPE '\\' OR nanoagent_fold(goal) LIKE ? ESCAPE '\\')"
)

COUNT_RUNS = "SELECT status, count(*) FROM runs GROUP BY status"

UPDATE_POSITION = (
    "UPDATE runs SET phase = ?, iteration = ?, current_task_id = ?, updated_at = ?"
    " WHERE run_id = ? AND epoch = ?"
)

# One statement ends a step: fenced by epoch, returns the run as it now stands. The step's
# first write (the task counters: how its tasks' stored statuses change, looked up first).
FINISH_STEP = (
    "UPDATE runs SET phase = :phase, iteration = :iteration, current_task_id = :current_task_id,"
    " updated_at = :now,"
    " tasks_total = tasks_total + :tasks_added, tasks_done = tasks_done + :tasks_done,"
    " status = coalesce(:status, status),"
    " result = CASE WHEN :status IS NULL THEN result ELSE :result END,"
    " error = CASE WHEN :status IS NULL THEN error ELSE :error END,"
    " pause_reason = CASE WHEN :status IS NULL THEN pause_reason ELSE :pause_reason END,"
    " pause_detail = CASE WHEN :status IS NULL THEN pause_detail ELSE :pause_detail END,"
    " finished_at = CASE WHEN :finished THEN :now ELSE finished_at END,"
    " owner_host = CASE WHEN :release THEN NULL ELSE owner_host END,"
    " owner_pid = CASE WHEN :release THEN NULL ELSE owner_pid END,"
    " owner_pid_started = CASE WHEN :release THEN NULL ELSE owner_pid_started END,"
    " lease_expires_at = CASE WHEN :release THEN NULL ELSE lease_expires_at END,"
    " requests = requests + :requests, tokens_in = tokens_in + :tokens_in,"
    " tokens_out = tokens_out + :tokens_out, cost_unknown = cost_unknown + :cost_unknown,"
    " cost_usd = CASE WHEN :cost IS NULL THEN cost_usd ELSE coalesce(cost_usd, 0) + :cost END"
    f" WHERE run_id = :run_id AND epoch = :epoch RETURNING {RUN_COLUMNS}"
)

SELECT_EPOCH = "SELECT epoch FROM runs WHERE run_id = ?"

# -- ownership -----------------------------------------------------------------------------

CLAIM_RUN = (
    "UPDATE runs SET owner_host = :host, owner_pid = :pid, owner_pid_started = :pid_started,"
    " epoch = epoch + 1, status = 'running', heartbeat_at = :now, lease_expires_at = :lease,"
    " abort_requested_at = NULL, finished_at = NULL, error = NULL, updated_at = :now,"
    " pause_reason = NULL, pause_detail = NULL"
    " WHERE run_id = :run_id AND epoch = :expected_epoch AND status != 'completed'"
    " AND (status != 'running' OR owner_pid IS NULL OR lease_expires_at IS NULL"
    "      OR lease_expires_at <= :now OR :owner_gone)"
    f" RETURNING {RUN_COLUMNS}"
)

# -- the queue (pool workers) ------------------------------------------------------------------

#: The :limit oldest queued runs (creation time, then id) no abort was requested for,
#: claimed. The write lock (BEGIN IMMEDIATE) makes the choice and the claim one step: one
#: winner per run. RETURNING gives no order: the caller sorts.
CLAIM_QUEUED = (
    "UPDATE runs SET owner_host = :host, owner_pid = :pid, owner_pid_started = :pid_started,"
    " epoch = epoch + 1, status = 'running', heartbeat_at = :now, lease_expires_at = :lease,"
    " finished_at = NULL, error = NULL, updated_at = :now"
    " WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'queued'"
    "   AND abort_requested_at IS NULL ORDER BY created_at, run_id LIMIT :limit)"
    f" RETURNING {RUN_COLUMNS}"
)

#: A crashed run taken up by recovery: as CLAIM_RUN, but only a run still stored running
#: (one its worker ended meanwhile, even as failed at the same epoch, stays as it is).
CLAIM_CRASHED = (
    "UPDATE runs SET owner_host = :host, owner_pid = :pid, owner_pid_started = :pid_started,"
    " epoch = epoch + 1, heartbeat_at = :now, lease_expires_at = :lease, updated_at = :now"
    " WHERE run_id = :run_id AND epoch = :expected_epoch AND status = 'running'"
    " AND (owner_pid IS NULL OR lease_expires_at IS NULL"
    "      OR lease_expires_at <= :now OR :owner_gone)"
    f" RETURNING {RUN_COLUMNS}"
)

#: How often recovery has taken the run up already (its restart events).
COUNT_RESTARTS = "SELECT count(*) FROM events WHERE run_id = ? AND kind = 'run_restarted'"

#: A claimed crashed run whose restart budget is spent ends failed, released.
FAIL_CLAIMED = (
    "UPDATE runs SET status = 'failed', owner_host = NULL, owner_pid = NULL,"
    " owner_pid_started = NULL, lease_expires_at = NULL, finished_at = :now,"
    " updated_at = :now, error = :reason"
    f" WHERE run_id = :run_id RETURNING {RUN_COLUMNS}"
)

RENEW_LEASE = (
    "UPDATE runs SET heartbeat_at = :now, lease_expires_at = :lease"
    " WHERE run_id = :run_id AND epoch = :epoch AND status = 'running'"
    f" RETURNING {RUN_COLUMNS}"
)

REQUEST_ABORT = (
    "UPDATE runs SET abort_requested_at = :now, updated_at = :now"
    " WHERE run_id = :run_id AND abort_requested_at IS NULL"
    " AND status NOT IN ('completed', 'failed', 'aborted')"
)

ABORT_UNOWNED = (
    "UPDATE runs SET status = 'aborted', epoch = epoch + 1, owner_host = NULL,"
    " owner_pid = NULL, owner_pid_started = NULL, lease_expires_at = NULL,"
    " abort_requested_at = coalesce(abort_requested_at, :now), finished_at = :now,"
    " updated_at = :now, error = :reason, pause_reason = NULL, pause_detail = NULL"
    " WHERE run_id = :run_id AND epoch = :expected_epoch"
    " AND status NOT IN ('completed', 'failed', 'aborted')"
    f" RETURNING {RUN_COLUMNS}"
)

SET_BUDGET = (
    "UPDATE runs SET max_tokens = :max_tokens, max_cost_usd = :max_cost_usd, updated_at = :now"
    " WHERE run_id = :run_id AND status = 'running' AND epoch = :epoch"
    f" RETURNING {RUN_COLUMNS}"
)

# -- tasks and results ---------------------------------------------------------------------

TASK_COLUMNS = "task_id, description, status, priority, result, attempts, failures, error, seq"

UPSERT_TASK = (
    "INSERT INTO tasks (run_id, task_id, seq, description, status, priority, result, attempts,"
    " failures, error) VALUES (:run_id, :task_id,"
    " (SELECT coalesce(max(seq) + 1, 0) FROM tasks WHERE run_id = :run_id),"
    " :description, :status, :priority, :result, :attempts, :failures, :error)"
    " ON CONFLICT (run_id, task_id) DO UPDATE SET description = excluded.description,"
    " status = excluded.status, priority = excluded.priority, result = excluded.result,"
    " attempts = excluded.attempts, failures = excluded.failures, error = excluded.error"
)

# A task already stored: changed in place (its seq stays), as UPSERT_TASK's conflict branch.
UPDATE_TASK = (
    "UPDATE tasks SET description = :description, status = :status, priority = :priority,"
    " result = :result, attempts = :attempts, failures = :failures, error = :error"
    " WHERE run_id = :run_id AND task_id = :task_id"
)
TASK_STATUS = "SELECT status FROM tasks WHERE run_id = ? AND task_id = ?"
# The run's task counters moved by what an upsert adds (new tasks, done ones), judged from
# the tasks' stored statuses before it.
MOVE_TASK_COUNTERS = (
    "UPDATE runs SET tasks_total = tasks_total + ?, tasks_done = tasks_done + ? WHERE run_id = ?"
)

SELECT_TASKS = f"SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ? ORDER BY seq"
SELECT_PENDING_TASKS = (
    f"SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ? AND status = 'pending'"
    " ORDER BY priority DESC, seq"
)

UPSERT_RESULT = (
    "INSERT INTO results (run_id, task_id, result) VALUES (?, ?, ?)"
    " ON CONFLICT (run_id, task_id) DO UPDATE SET result = excluded.result"
)
SELECT_RESULTS = (
    "SELECT r.task_id, r.result FROM results r JOIN tasks t"
    " ON t.run_id = r.run_id AND t.task_id = r.task_id WHERE r.run_id = ? ORDER BY t.seq"
)
TASK_EXISTS = "SELECT 1 FROM tasks WHERE run_id = ? AND task_id = ?"
TOUCH_RUN = "UPDATE runs SET updated_at = ? WHERE run_id = ? AND epoch = ?"
TOUCH_RUN_ANY = "UPDATE runs SET updated_at = ? WHERE run_id = ?"

# -- the journal ---------------------------------------------------------------------------

ATTEMPT_COLUMNS = (
    "task_id, attempt, outcome, messages, model, requests, tokens_in, tokens_out, cost_usd, seconds"
)
INSERT_ATTEMPT = (
    "INSERT INTO attempts (run_id, task_id, attempt, outcome, messages, model, requests,"
    " tokens_in, tokens_out, cost_usd, seconds) VALUES (:run_id, :task_id, :attempt, :outcome,"
    " :messages, :model, :requests, :tokens_in, :tokens_out, :cost_usd, :seconds)"
)
ATTEMPT_EXISTS = "SELECT 1 FROM attempts WHERE run_id = ? AND task_id = ? AND attempt = ?"
SELECT_ATTEMPTS = (
    "SELECT a.task_id, a.attempt, a.outcome, a.messages, a.model, a.requests, a.tokens_in,"
    " a.tokens_out, a.cost_usd, a.seconds FROM attempts a JOIN tasks t"
    " ON t.run_id = a.run_id AND t.task_id = a.task_id WHERE a.run_id = ?"
    " ORDER BY t.seq, a.attempt"
)

# -- approvals -----------------------------------------------------------------------------

APPROVAL_COLUMNS = (
    "request_id, run_id, task_id, attempt, what, arguments, why, digest, decision, reason,"
    " requested_at, decided_at, messages"
)
#: a new request; asking again for the task's pending one changes nothing
INSERT_APPROVAL = (
    "INSERT INTO approvals (run_id, request_id, seq, task_id, attempt, what, arguments, why,"
    " digest, decision, reason, requested_at, decided_at, messages) VALUES (:run_id,"
    " :request_id, (SELECT coalesce(max(seq) + 1, 0) FROM approvals WHERE run_id = :run_id),"
    " :task_id, :attempt, :what, :arguments, :why, :digest, 'pending', NULL, :now, NULL,"
    " :messages) ON CONFLICT (run_id, request_id) DO NOTHING"
)
#: a new request supersedes the run's other pending ones
EXPIRE_APPROVALS = (
    "UPDATE approvals SET decision = 'expired', decided_at = :now"
    " WHERE run_id = :run_id AND decision = 'pending' AND request_id != :request_id"
)
SELECT_APPROVALS = f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = ? ORDER BY seq"
SELECT_APPROVAL = f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = ? AND request_id = ?"
DECIDE_APPROVAL = (
    "UPDATE approvals SET decision = :decision, reason = :reason, decided_at = :now"
    " WHERE run_id = :run_id AND request_id = :request_id AND decision = 'pending'"
)

# -- events --------------------------------------------------------------------------------

INSERT_EVENT = "INSERT INTO events (run_id, ts, kind, data) VALUES (?, ?, ?, ?)"
INSERT_EVENT_RETURNING = INSERT_EVENT + " RETURNING id"
SELECT_EVENTS = "SELECT id, run_id, ts, kind, data FROM events WHERE id > ? ORDER BY id LIMIT ?"
#: One look at the end of the primary key (events.id is the rowid).
LAST_EVENT_ID = "SELECT coalesce(max(id), 0) FROM events"
SELECT_RUN_EVENTS = (
    "SELECT id, run_id, ts, kind, data FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?"
)
RUN_EXISTS = "SELECT 1 FROM runs WHERE run_id = ?"
