"""Records of runs, tasks and events: frozen pydantic models with UTC-aware datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nanoagent_core.errors import ValidationError

__all__ = [
    "MAX_GOAL_CHARS",
    "MAX_ITERATIONS",
    "MAX_PAUSE_DETAIL_CHARS",
    "RUN_ID_PATTERN",
    "Attempt",
    "Event",
    "EventKind",
    "ModelCall",
    "Owner",
    "PauseReason",
    "Phase",
    "RunState",
    "RunStatus",
    "Task",
    "TaskStatus",
    "check_run_id",
    "utc_now",
    "validated",
]

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_GOAL_CHARS = 10_000
MAX_ITERATIONS = 10_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is 1-64 characters of [A-Za-z0-9_-], else raise ValidationError."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValidationError(
            f"invalid run id {run_id[:80]!r}: use 1-64 characters of A-Z, a-z, 0-9, '_' and '-'"
        )
    return run_id


def _run_id(value: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(value):
        raise ValueError("run id must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return value


def _goal(value: str) -> str:
    if not value.strip():
        raise ValueError("goal must not be empty")
    if len(value) > MAX_GOAL_CHARS:
        raise ValueError(f"goal must be at most {MAX_GOAL_CHARS:,} characters")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]
RunId = Annotated[str, AfterValidator(_run_id)]


class Phase(StrEnum):
    """Where the loop is."""

    PLANNING = "planning"  #: the goal has not been split into tasks yet
    EXECUTING = "executing"  #: ``current_task_id`` has started (its body may be in flight)
    REFLECTING = "reflecting"  #: the iteration's reflection is due
    DONE = "done"  #: nothing left to do; the run has a final status


class RunStatus(StrEnum):
    """The stored status of a run. ``crashed`` is never stored: it is derived (see status.py)."""

    RUNNING = "running"  #: a worker holds (or is about to claim) the run
    INTERRUPTED = "interrupted"  #: stopped cleanly by SIGTERM/SIGINT; resumable
    COMPLETED = "completed"  #: finished; reflection said done or max_iterations was reached
    FAILED = "failed"  #: a step could not proceed; resumable
    ABORTED = "aborted"  #: stopped on request; resumable
    #: stopped at a checkpoint until something changes (``RunState.pause_reason`` says what:
    #: a budget raised, a person's decision); no worker holds it; resumable, abortable, never
    #: pruned
    PAUSED = "paused"
    QUEUED = "queued"  #: waiting for a pool worker to claim it (``run --enqueue``)

    @property
    def finished(self) -> bool:
        """True for statuses that only an explicit resume changes and abort refuses."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABORTED)


class PauseReason(StrEnum):
    """Why a run is ``paused``: what has to change before ``resume`` makes sense."""

    BUDGET = "budget"  #: its token or cost budget is spent; resume with a higher one
    APPROVAL = "approval"  #: it waits for a person's decision on a request


#: The longest ``RunState.pause_detail`` (one line), in characters.
MAX_PAUSE_DETAIL_CHARS = 500


class TaskStatus(StrEnum):
    PENDING = "pending"  #: waiting to run, or in flight, or retrying after a failed attempt
    DONE = "done"  #: its outcome is committed; never executed again
    FAILED = "failed"  #: its attempts ran out; the run failed with it
    CANCELLED = "cancelled"  #: reflection judged it no longer relevant


class EventKind(StrEnum):
    RUN_CREATED = "run_created"
    RUN_CLAIMED = "run_claimed"
    PLANNED = "planned"
    TASK_STARTED = "task_started"
    TASK_DONE = "task_done"
    TASK_FAILED = "task_failed"
    REFLECTED = "reflected"
    ABORT_REQUESTED = "abort_requested"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_INTERRUPTED = "run_interrupted"
    RUN_ABORTED = "run_aborted"
    RUN_PAUSED = "run_paused"  #: data: reason, detail, phase, iteration, task_id
    BUDGET_SET = "budget_set"  #: data: max_tokens, max_cost_usd (None: no limit)
    RUN_RESTARTED = "run_restarted"  #: a pool worker took up a crashed run (``--recover``)
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    NOTE = "note"


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Owner(BaseModel):
    """The worker process holding a run: pid plus its start time, so a reused pid is not trusted."""

    model_config = _FROZEN

    host: str
    pid: int
    pid_started: float  # process start time, seconds since boot (0.0 when unknown)


class Task(BaseModel):
    model_config = _FROZEN

    id: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1)
    status: TaskStatus = TaskStatus.PENDING
    priority: int = Field(default=5, ge=1, le=10)
    result: str | None = None
    attempts: int = Field(default=0, ge=0)  #: attempts started (bodies run at least once)
    failures: int = Field(default=0, ge=0)  #: failed attempts since the last success or resume
    error: str | None = None  #: the last failed attempt's error
    seq: int = Field(default=0, ge=0)  #: insertion order within the run (ties in priority)


class RunState(BaseModel):
    model_config = _FROZEN

    run_id: RunId
    goal: Annotated[str, AfterValidator(_goal)]
    max_iterations: int = Field(ge=1, le=MAX_ITERATIONS)
    agent: str = Field(default="demo", min_length=1, max_length=200)
    agent_options: dict[str, str] = Field(default_factory=dict[str, str])
    phase: Phase = Phase.PLANNING
    iteration: int = Field(default=0, ge=0)
    current_task_id: str | None = None
    status: RunStatus = RunStatus.RUNNING
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)
    finished_at: UtcDatetime | None = None
    owner: Owner | None = None
    epoch: int = Field(default=0, ge=0)
    heartbeat_at: UtcDatetime | None = None
    lease_expires_at: UtcDatetime | None = None
    abort_requested_at: UtcDatetime | None = None
    error: str | None = None
    result: str | None = None
    tasks_total: int = Field(default=0, ge=0)
    tasks_done: int = Field(default=0, ge=0)
    #: The run's ledger totals over its journal (task attempts, planner and reflector calls),
    #: kept in the run row by difference.
    requests: int = Field(default=0, ge=0)
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    #: The sum of the attempts' known costs in USD; None when no attempt's cost is known.
    cost_usd: float | None = None
    #: Attempts that made model requests at a price nobody knows (their cost is not in
    #: ``cost_usd``): 0 means ``cost_usd`` is the whole cost.
    cost_unknown: int = Field(default=0, ge=0)
    #: Why a ``paused`` run is paused (None for every other status; cleared by a claim).
    pause_reason: PauseReason | None = None
    #: One line saying more (e.g. how much of the budget was spent); None when there is none.
    pause_detail: str | None = Field(default=None, max_length=MAX_PAUSE_DETAIL_CHARS)
    #: The run's budget (None: no limit): checked before each task body and reflection,
    #: and given to model-backed bodies as pydantic-ai UsageLimits for what remains.
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    #: Why the stored row could not be read whole (None for every row nanoagent wrote); the
    #: fields that could not be read hold defaults. Never stored: set when reading.
    damaged: str | None = None


class Attempt(BaseModel):
    """One journal entry: a task attempt's outcome with its conversation and what it spent.

    Committed in the same step as the attempt's outcome, so an attempt cut short by a crash
    has no entry (its messages are absent, never half).
    """

    model_config = _FROZEN

    task_id: str = Field(min_length=1, max_length=64)
    attempt: int = Field(ge=1)
    #: "done", "failed", or the reason of the pause that cut the attempt short ("budget",
    #: "approval": see PauseReason); a cut attempt is not a failure (its task stays pending)
    outcome: str
    #: pydantic-ai's own serialization (``ModelMessagesTypeAdapter``) as JSON text, or None
    messages: str | None = None
    model: str | None = None
    requests: int = Field(default=0, ge=0)
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    cost_usd: float | None = None  #: None: unknown (no price for the model), never a guess
    seconds: float = Field(default=0.0, ge=0)


class ModelCall(BaseModel):
    """One journal entry of a planner or reflector call: its outcome with its conversation
    and what it spent, committed in the step that commits the call's outcome (the plan, the
    reflection, the pause it was cut short by, or the failure of the run), as an Attempt.

    ``call`` numbers the calls of one role at one iteration (1, 2, ...: a plan cut short by
    the budget is called again on resume); the store gives the number when the step commits
    (the value a step carries is ignored), so an entry is written once, with its step.
    """

    model_config = _FROZEN

    role: Literal["planner", "reflector"]
    iteration: int = Field(ge=0)
    call: int = Field(default=0, ge=0)
    #: "done" (its output was used), "failed" (the step fails the run), or the reason of
    #: the pause that cut it short ("budget")
    outcome: str
    messages: str | None = None  #: as Attempt.messages
    model: str | None = None
    requests: int = Field(default=0, ge=0)
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    cost_usd: float | None = None  #: None: unknown (no price for the model), never a guess
    seconds: float = Field(default=0.0, ge=0)


class Event(BaseModel):
    model_config = _FROZEN

    id: int  #: gap-free and increasing across all runs
    run_id: str
    ts: UtcDatetime
    kind: str
    data: dict[str, Any] = Field(default_factory=dict[str, Any])


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], **fields: Any) -> M:
    """Build ``model`` and turn pydantic's error into one clear line (a ValidationError)."""
    try:
        return model(**fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or model.__name__
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationError(f"{where}: {message}") from None
