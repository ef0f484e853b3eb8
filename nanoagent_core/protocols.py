"""Store interfaces. Each is small; a component asks only for the ones it uses.

Guarantees every implementation gives (the contract suite in tests/ checks them):

* Every write a worker makes is fenced by the run's ``epoch``: if another worker has claimed
  the run since (epoch grew), the write raises LeaseLostError and changes nothing.
* ``commit_step`` is atomic: task rows, results, loop position, status and events of one
  step are all stored or none are.
* Events have ids that grow without gaps across all runs, so ``read_events(after_id=n)``
  returns everything committed after event ``n``, and ``read_events(after_id=m)`` returns
  nothing when ``m`` is ``last_event_id()``. Pruning (PruneStore) removes the events of old
  finished runs: holes where they were, never a new id at or below one handed out.
* ``claim_run`` is a compare-and-set on ``expected_epoch``: of several racing claims exactly
  one wins; the others raise RunBusyError.
* A result must name a task of its run (already stored, or saved in the same step); one
  that does not raises ValidationError and the whole step is refused.
* Event data is stored as JSON: it reads back as JSON types (a tuple comes back a list);
  data that is not JSON raises ValidationError before anything is written.
* Cancelling the caller of a write never leaves half of it behind, but does not undo it
  either: the write may still complete. After a cancellation, re-read to know which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nanoagent_core.approvals import ApprovalRequest
from nanoagent_core.models import (
    MAX_PAUSE_DETAIL_CHARS,
    Attempt,
    Event,
    ModelCall,
    Owner,
    PauseReason,
    Phase,
    RunState,
    RunStatus,
    Task,
)

__all__ = [
    "ApprovalReader",
    "ApprovalStore",
    "ChangeWatch",
    "ContextStore",
    "EventReader",
    "EventStore",
    "JournalStore",
    "LeaseStore",
    "NewEvent",
    "PruneCount",
    "PruneStore",
    "QueueStore",
    "RunReader",
    "RunStore",
    "SnapshotStore",
    "Step",
    "StepStore",
    "Store",
    "TaskStore",
    "Viewer",
]


class NewEvent(BaseModel):
    """An event to append; the store gives it its id and time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    data: dict[str, Any] = Field(default_factory=dict[str, Any])


class Step(BaseModel):
    """Everything one step of the loop changes, committed in one transaction.

    ``tasks`` are upserted whole (new tasks inserted, known ones replaced); ``results`` go to
    the run's context; the position (phase, iteration, current task) is always written;
    ``status`` other than None and RUNNING ends the run and releases the owner.
    ``attempts`` are journal entries (one per attempt: a new (task, attempt) pair; the run's
    ledger totals grow by theirs in the same transaction); ``calls`` are the planner's and
    reflector's journal entries, numbered by the store, counted in the ledger the same way.
    ``approval`` is a request to record (approvals.py; a pending one of the same id is left as
    it is) in the step that pauses the run; the run's other pending requests expire.

    ``status=PAUSED`` needs a ``pause_reason`` (and may carry a one-line ``pause_detail``);
    a reason with any other status is refused. The run stops at the step's position with no
    owner and no lease, not finished: ``resume`` takes it up from there (see pause.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    phase: Phase
    iteration: int
    current_task_id: str | None = None
    tasks: tuple[Task, ...] = ()
    results: Mapping[str, str] = Field(default_factory=dict[str, str])
    events: tuple[NewEvent, ...] = ()
    status: RunStatus | None = None
    result: str | None = None
    error: str | None = None
    attempts: tuple[Attempt, ...] = ()
    calls: tuple[ModelCall, ...] = ()
    pause_reason: PauseReason | None = None
    pause_detail: str | None = Field(default=None, max_length=MAX_PAUSE_DETAIL_CHARS)
    approval: ApprovalRequest | None = None

    @model_validator(mode="after")
    def _pause_has_a_reason(self) -> Step:
        if (self.status is RunStatus.PAUSED) != (self.pause_reason is not None):
            raise ValueError("a step pauses the run (status paused) exactly when it gives a reason")
        if self.pause_detail is not None and self.pause_reason is None:
            raise ValueError("a pause detail needs a pause reason")
        return self


class RunReader(Protocol):
    async def get_run(self, run_id: str) -> RunState:
        """RunNotFoundError if there is no such run."""
        ...

    async def list_runs(
        self,
        *,
        statuses: Sequence[RunStatus] | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunState]:
        """Runs, newest activity (``updated_at``) first; ``text`` matches id or goal."""
        ...

    async def count_runs(self) -> dict[RunStatus, int]:
        """How many runs have each stored status."""
        ...


class RunStore(RunReader, Protocol):
    async def create_run(self, run: RunState) -> RunState:
        """Insert a new run (and its ``run_created`` event). RunExistsError if the id is taken."""
        ...

    async def update_loop_state(
        self,
        run_id: str,
        *,
        epoch: int,
        phase: Phase,
        iteration: int,
        current_task_id: str | None,
    ) -> RunState:
        """Move the loop position alone (fenced). RunNotFoundError for an unknown run."""
        ...


class TaskStore(Protocol):
    async def save_task(self, run_id: str, task: Task, *, epoch: int) -> None: ...

    async def get_all_tasks(self, run_id: str) -> list[Task]:
        """All tasks in insertion order."""
        ...

    async def get_pending_tasks(self, run_id: str) -> list[Task]:
        """Pending tasks, highest priority first, then insertion order."""
        ...


class ContextStore(Protocol):
    async def save_result(self, run_id: str, task_id: str, result: str, *, epoch: int) -> None: ...

    async def get_all_results(self, run_id: str) -> dict[str, str]:
        """task_id -> result."""
        ...


class EventReader(Protocol):
    async def read_events(
        self, *, after_id: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[Event]:
        """Events with id > after_id, oldest first, of one run or of all runs."""
        ...

    async def last_event_id(self) -> int:
        """The id of the newest committed event (0 when there is none), in one cheap
        query: where a viewer starts reading ``read_events(after_id=...)`` from."""
        ...


class EventStore(EventReader, Protocol):
    async def append_event(self, run_id: str, event: NewEvent) -> Event:
        """Append an event that belongs to no step (a note). Not fenced."""
        ...


class LeaseStore(Protocol):
    async def claim_run(
        self,
        run_id: str,
        owner: Owner,
        *,
        expected_epoch: int,
        lease_seconds: float,
        owner_gone: bool = False,
    ) -> RunState:
        """Take the run: status running, epoch + 1, a fresh lease.

        Succeeds only if the epoch is still ``expected_epoch`` and nobody live holds the run
        (no owner, lease expired, or ``owner_gone`` — the caller checked the owner's pid on
        this host). RunBusyError otherwise; RunFinishedError for a completed run.
        """
        ...

    async def renew_lease(self, run_id: str, *, epoch: int, lease_seconds: float) -> RunState:
        """Heartbeat: extend the lease. LeaseLostError if the epoch moved on."""
        ...

    async def request_abort(self, run_id: str) -> RunState:
        """Record an abort request (idempotent). RunFinishedError for a finished run."""
        ...

    async def abort_unowned(self, run_id: str, *, expected_epoch: int, reason: str) -> RunState:
        """End a run no live worker holds: status aborted, epoch + 1 (fencing any zombie).

        RunBusyError if the epoch moved on (someone claimed it meanwhile).
        """
        ...

    async def set_budget(
        self, run_id: str, *, epoch: int, max_tokens: int | None, max_cost_usd: float | None
    ) -> RunState:
        """Set the run's budget (None: no limit), fenced by ``epoch`` like a step, with a
        ``budget_set`` event. The worker that claimed the run calls it before its loop."""
        ...


class QueueStore(Protocol):
    """Pool workers' side: queued runs claimed oldest first, crashed runs recovered.

    * ``claim_next`` is one compare-and-set: of several racing claimers (processes, hosts)
      exactly one gets each queued run; the others get the next one, or None.
    * ``recover_run`` counts the run's restarts by its ``run_restarted`` events: once
      ``budget`` of them were made, the run ends ``failed`` instead (fenced: epoch + 1).
    """

    async def claim_next(self, owner: Owner, *, lease_seconds: float) -> RunState | None:
        """Claim the oldest queued run (creation time, then id) whose abort was not
        requested; None when there is none."""
        ...

    async def claim_queued(
        self, owner: Owner, *, lease_seconds: float, limit: int
    ) -> list[RunState]:
        """Claim up to ``limit`` queued runs as :meth:`claim_next` would one after another,
        oldest first (SQLite: in one transaction); [] when there is none."""
        ...

    async def recover_run(
        self,
        run_id: str,
        owner: Owner,
        *,
        expected_epoch: int,
        lease_seconds: float,
        owner_gone: bool,
        budget: int,
    ) -> RunState:
        """Take up a crashed run (stored running, its lease expired or, ``owner_gone``, its
        worker's pid dead on this host): a ``run_restarted`` event and a claim, or, with
        ``budget`` restarts spent, the run ended ``failed``. RunBusyError if the epoch moved
        on or the run is held, RunFinishedError if it has finished meanwhile (as claim_run).
        """
        ...

    async def wait_for_queue(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for news of an enqueued run: True when the store
        pushed it (PostgreSQL's NOTIFY; the memory store's own enqueue), False when the time
        ran out (a store that pushes nothing always waits it out: the caller polls)."""
        ...

    async def announce_queued(self) -> None:
        """Tell waiting pool workers that a run was queued (again) by a step."""
        ...


class StepStore(Protocol):
    async def commit_step(self, run_id: str, step: Step, *, epoch: int) -> RunState:
        """Commit one step atomically, fenced by ``epoch``. Returns the run after it."""
        ...


class SnapshotStore(Protocol):
    """Reads a viewer makes together, each from one consistent snapshot."""

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunState]:
        """The runs that exist among ``run_ids``, in that order (unknown ids are skipped)."""
        ...

    async def get_run_detail(self, run_id: str) -> tuple[RunState, list[Task], dict[str, str]]:
        """The run, its tasks (insertion order) and its results. RunNotFoundError if none."""
        ...


@dataclass(frozen=True)
class PruneCount:
    """What one prune batch found and removed (or, counting only, would remove)."""

    candidates: int = 0  #: runs chosen before the delete transaction (0: nothing left)
    runs: int = 0  #: runs deleted (candidates a worker took meanwhile are kept)
    tasks: int = 0
    events: int = 0

    def __add__(self, other: PruneCount) -> PruneCount:
        return PruneCount(
            self.candidates + other.candidates,
            self.runs + other.runs,
            self.tasks + other.tasks,
            self.events + other.events,
        )


class PruneStore(Protocol):
    """Retention: deleting finished runs with everything they own.

    A run is prunable when its stored status is one of ``statuses`` (finished ones only:
    completed, aborted, failed), it finished more than ``older_than`` ago by the store's
    clock, and, when ``keep_last`` > 0, it is older than the ``keep_last`` newest runs of
    those statuses (by ``finished_at``, then run id). Event ids of other runs do not change:
    pruning leaves holes in the id sequence only where a pruned run's events were.
    """

    async def delete_finished_runs(
        self,
        *,
        statuses: Sequence[RunStatus],
        older_than: timedelta,
        keep_last: int = 0,
        limit: int = 500,
    ) -> PruneCount:
        """One batch: choose at most ``limit`` prunable runs (outside any write lock), then
        delete them with their tasks, results and events in one short transaction whose
        delete re-checks status and age, so a run a worker took meanwhile stays. Call again
        until ``candidates`` is 0."""
        ...

    async def count_finished_runs(
        self, *, statuses: Sequence[RunStatus], older_than: timedelta, keep_last: int = 0
    ) -> PruneCount:
        """What pruning would delete now (runs, tasks, events), changing nothing."""
        ...

    async def reclaim_space(self, *, vacuum: bool = False) -> str:
        """Give freed space back where the store can without blocking workers for long;
        one line saying what was done (or what was left, and why)."""
        ...


class JournalStore(Protocol):
    async def get_attempts(self, run_id: str) -> list[Attempt]:
        """The run's journal: attempts by task insertion order, then attempt number."""
        ...

    async def get_calls(self, run_id: str) -> list[ModelCall]:
        """The run's planner and reflector calls, by iteration, then role, then number."""
        ...


class ApprovalReader(Protocol):
    async def get_approvals(self, run_id: str) -> list[ApprovalRequest]:
        """The run's approval requests, oldest first (none for an unknown run)."""
        ...


class ApprovalStore(ApprovalReader, Protocol):
    """Approval requests (see approvals.py). A request is recorded by ``commit_step``."""

    async def decide_approval(
        self,
        run_id: str,
        request_id: str,
        *,
        approve: bool,
        digest: str | None = None,
        reason: str | None = None,
    ) -> ApprovalRequest:
        """Decide a pending request once, in one transaction that also writes an
        ``approval_decided`` event. RequestNotFoundError for no such request;
        StaleRequestError when it is no longer pending or ``digest`` (when given) is not its
        digest. Not fenced: a person decides, not a worker."""
        ...


class ChangeWatch(Protocol):
    async def change_token(self) -> int:
        """A cheap value that differs once anyone else has committed a change."""
        ...

    @property
    def pushes_changes(self) -> bool:
        """True when changes are pushed to the store, so that :meth:`change_token` reads a
        value kept here and polling it often costs no query (PostgreSQL's LISTEN/NOTIFY;
        the memory store's own writes); False when each call asks the database (SQLite's
        ``PRAGMA data_version``)."""
        ...


class Store(
    RunStore,
    TaskStore,
    ContextStore,
    EventStore,
    LeaseStore,
    StepStore,
    SnapshotStore,
    JournalStore,
    ApprovalStore,
    ChangeWatch,
    PruneStore,
    QueueStore,
    Protocol,
):
    """Everything; what the command line and the dashboard open."""

    @property
    def location(self) -> str:
        """Where the data lives (a path, or ':memory:'), for messages and headers."""
        ...

    async def close(self) -> None: ...


class Viewer(
    RunReader, EventReader, SnapshotStore, JournalStore, ApprovalReader, ChangeWatch, Protocol
):
    """What a dashboard reads, and all it may do: nothing here writes. Opened read-only by
    :func:`nanoagent_core.stores.open_viewer`; every :class:`Store` is one."""

    @property
    def location(self) -> str:
        """Where the data lives (a path, or a URL with its password masked)."""
        ...

    async def close(self) -> None: ...
