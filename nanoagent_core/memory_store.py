"""The in-memory store: the same protocols and semantics as the SQLite store, in one process.

For fast tests of the loop and for ephemeral runs. Every method does all its work between
two awaits, so each one is atomic with respect to other coroutines, as a transaction is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from nanoagent_core import store_rules as rules
from nanoagent_core.errors import (
    DatabaseError,
)
from nanoagent_core.memory_approvals import MemoryApprovals
from nanoagent_core.memory_journal import MemoryJournal
from nanoagent_core.memory_queue import MemoryQueue
from nanoagent_core.models import (
    Event,
    EventKind,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
    check_run_id,
    utc_now,
)
from nanoagent_core.paths import MEMORY
from nanoagent_core.protocols import NewEvent, PruneCount, Step

__all__ = ["MemoryStore"]


def _json_copy(event: NewEvent) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(rules.event_json(event))
    return copied


class MemoryStore(MemoryQueue, MemoryApprovals, MemoryJournal):
    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._runs: dict[str, RunState] = {}
        self._tasks: dict[str, dict[str, Task]] = {}
        self._done_counts: dict[str, int] = {}  # run id -> tasks done, kept per upsert
        self._results: dict[str, dict[str, str]] = {}
        # Index i holds event id i + 1; None where a pruned run's event was (ids never move).
        self._events: list[Event | None] = []
        self._attempts = {}  # see MemoryJournal
        self._calls = {}
        self._approvals = {}  # see MemoryApprovals
        self._version = 0
        self._closed = False

    @property
    def location(self) -> str:
        return MEMORY

    async def close(self) -> None:
        """Nothing to release; later calls raise DatabaseError, as on the other stores."""
        self._closed = True

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"{MEMORY}: the store is closed")

    async def change_token(self) -> int:
        self._check_open()
        return self._version

    @property
    def pushes_changes(self) -> bool:
        """True: every write of this process moves the token it keeps; no query to make."""
        return True

    # -- helpers ---------------------------------------------------------------------------

    def _run(self, run_id: str) -> RunState:
        try:
            return self._runs[run_id]
        except KeyError:
            raise rules.run_not_found(run_id) from None

    def _fenced(self, run_id: str, epoch: int) -> RunState:
        run = self._run(run_id)
        if run.epoch != epoch:
            raise rules.fence_refusal(run_id, run.epoch, epoch)
        return run

    def _new_events(self, run_id: str, now: datetime, events: Sequence[NewEvent]) -> list[Event]:
        """The events as they will be stored (data through JSON, as the SQLite store keeps
        it); raises before anything is stored."""
        first = len(self._events) + 1
        return [
            Event(id=first + i, run_id=run_id, ts=now, kind=event.kind, data=_json_copy(event))
            for i, event in enumerate(events)
        ]

    def _emit(self, run_id: str, now: datetime, events: Sequence[NewEvent]) -> None:
        self._events.extend(self._new_events(run_id, now, events))

    def _put(self, run: RunState, **changes: Any) -> RunState:
        updated = run.model_copy(update=changes)
        self._runs[run.run_id] = updated
        self._version += 1
        return updated

    def _upsert_task(self, run_id: str, task: Task) -> None:
        tasks = self._tasks[run_id]
        known = tasks.get(task.id)
        seq = known.seq if known is not None else len(tasks)
        tasks[task.id] = task.model_copy(update={"seq": seq})
        was_done = known is not None and known.status is TaskStatus.DONE
        done = self._done_counts.get(run_id, 0)
        self._done_counts[run_id] = done + (task.status is TaskStatus.DONE) - was_done

    def _counts(self, run_id: str) -> dict[str, int]:
        return {
            "tasks_total": len(self._tasks[run_id]),
            "tasks_done": self._done_counts.get(run_id, 0),
        }

    # -- RunStore --------------------------------------------------------------------------

    async def create_run(self, run: RunState) -> RunState:
        self._check_open()
        if run.run_id in self._runs:
            raise rules.run_exists(run.run_id)
        now = self._clock()
        self._tasks[run.run_id] = {}
        self._results[run.run_id] = {}
        stored = run.model_copy(
            update={
                "created_at": now,
                "updated_at": now,
                "tasks_total": 0,
                "tasks_done": 0,
                **rules.NO_LEDGER,
            }
        )
        self._runs[run.run_id] = stored
        self._version += 1
        self._emit(run.run_id, now, [rules.created_event(run)])
        if stored.status is RunStatus.QUEUED:
            self._queue_news().set()
        return stored

    async def get_run(self, run_id: str) -> RunState:
        self._check_open()
        check_run_id(run_id)
        return self._run(run_id)

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunState]:
        self._check_open()
        return [self._runs[run_id] for run_id in run_ids if run_id in self._runs]

    async def list_runs(
        self,
        *,
        statuses: Sequence[RunStatus] | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunState]:
        self._check_open()
        wanted = None if statuses is None else {RunStatus(status) for status in statuses}
        runs = [
            run
            for run in self._runs.values()
            if (wanted is None or run.status in wanted)
            and (not text or rules.matches_text(text, run.run_id, run.goal))
        ]
        runs.sort(key=lambda run: run.run_id)
        runs.sort(key=lambda run: run.updated_at, reverse=True)
        start = max(0, offset)
        return runs[start : start + max(0, limit)]

    async def count_runs(self) -> dict[RunStatus, int]:
        self._check_open()
        counts: dict[RunStatus, int] = {}
        for run in self._runs.values():
            counts[run.status] = counts.get(run.status, 0) + 1
        return counts

    async def update_loop_state(
        self,
        run_id: str,
        *,
        epoch: int,
        phase: Phase,
        iteration: int,
        current_task_id: str | None,
    ) -> RunState:
        self._check_open()
        run = self._fenced(run_id, epoch)
        return self._put(
            run,
            phase=Phase(phase),
            iteration=iteration,
            current_task_id=current_task_id,
            updated_at=self._clock(),
        )

    # -- TaskStore and ContextStore ----------------------------------------------------------

    async def save_task(self, run_id: str, task: Task, *, epoch: int) -> None:
        self._check_open()
        run = self._fenced(run_id, epoch)
        self._upsert_task(run_id, task)
        self._put(run, updated_at=self._clock(), **self._counts(run_id))

    async def get_all_tasks(self, run_id: str) -> list[Task]:
        self._check_open()
        return sorted(self._tasks.get(run_id, {}).values(), key=lambda task: task.seq)

    async def get_pending_tasks(self, run_id: str) -> list[Task]:
        self._check_open()
        pending = [t for t in await self.get_all_tasks(run_id) if t.status is TaskStatus.PENDING]
        return sorted(pending, key=lambda task: (-task.priority, task.seq))

    async def save_result(self, run_id: str, task_id: str, result: str, *, epoch: int) -> None:
        self._check_open()
        run = self._fenced(run_id, epoch)
        if task_id not in self._tasks[run_id]:
            raise rules.missing_task(run_id, task_id)
        self._results[run_id][task_id] = result
        self._put(run, updated_at=self._clock())

    async def get_all_results(self, run_id: str) -> dict[str, str]:
        self._check_open()
        results = self._results.get(run_id, {})
        order = {task.id: task.seq for task in self._tasks.get(run_id, {}).values()}
        return dict(sorted(results.items(), key=lambda item: order[item[0]]))

    async def get_run_detail(self, run_id: str) -> tuple[RunState, list[Task], dict[str, str]]:
        self._check_open()
        run = await self.get_run(run_id)
        return run, await self.get_all_tasks(run_id), await self.get_all_results(run_id)

    # -- EventStore ------------------------------------------------------------------------

    async def append_event(self, run_id: str, event: NewEvent) -> Event:
        self._check_open()
        self._run(run_id)
        appended = self._new_events(run_id, self._clock(), [event])
        self._events.extend(appended)
        self._version += 1
        return appended[-1]

    async def read_events(
        self, *, after_id: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[Event]:
        self._check_open()
        out: list[Event] = []
        if limit <= 0:
            return out
        for event in self._events[max(0, after_id) :]:
            if event is not None and (run_id is None or event.run_id == run_id):
                out.append(event)
                if len(out) >= limit:
                    break
        return out

    async def last_event_id(self) -> int:
        self._check_open()
        return len(self._events)  # ids are positions (pruned events leave None behind)

    # -- LeaseStore ------------------------------------------------------------------------

    async def claim_run(
        self,
        run_id: str,
        owner: Owner,
        *,
        expected_epoch: int,
        lease_seconds: float,
        owner_gone: bool = False,
    ) -> RunState:
        self._check_open()
        check_run_id(run_id)
        run = self._run(run_id)
        now = self._clock()
        free = (
            run.status is not RunStatus.RUNNING
            or run.owner is None
            or run.lease_expires_at is None
            or run.lease_expires_at <= now
            or owner_gone
        )
        if run.epoch != expected_epoch or run.status is RunStatus.COMPLETED or not free:
            raise rules.claim_refusal(run_id, run, expected_epoch)
        claimed = self._put(
            run,
            owner=owner,
            epoch=run.epoch + 1,
            status=RunStatus.RUNNING,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            abort_requested_at=None,
            finished_at=None,
            error=None,
            pause_reason=None,
            pause_detail=None,
            updated_at=now,
        )
        self._emit(run_id, now, [rules.claimed_event(claimed, owner)])
        return claimed

    async def renew_lease(self, run_id: str, *, epoch: int, lease_seconds: float) -> RunState:
        self._check_open()
        run = self._fenced(run_id, epoch)
        if run.status is not RunStatus.RUNNING:
            raise rules.fence_refusal(run_id, run.epoch, epoch)
        now = self._clock()
        return self._put(
            run, heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds)
        )

    async def request_abort(self, run_id: str) -> RunState:
        self._check_open()
        check_run_id(run_id)
        run = self._run(run_id)
        if run.status.finished:
            raise rules.run_finished(run)
        if run.abort_requested_at is not None:
            return run
        now = self._clock()
        run = self._put(run, abort_requested_at=now, updated_at=now)
        self._emit(run_id, now, [NewEvent(kind=EventKind.ABORT_REQUESTED)])
        return run

    async def abort_unowned(self, run_id: str, *, expected_epoch: int, reason: str) -> RunState:
        self._check_open()
        check_run_id(run_id)
        run = self._run(run_id)
        if run.epoch != expected_epoch or run.status.finished:
            raise rules.claim_refusal(run_id, run, expected_epoch)
        now = self._clock()
        run = self._put(
            run,
            status=RunStatus.ABORTED,
            epoch=run.epoch + 1,
            owner=None,
            lease_expires_at=None,
            abort_requested_at=run.abort_requested_at or now,
            finished_at=now,
            updated_at=now,
            error=reason,
            pause_reason=None,
            pause_detail=None,
        )
        self._emit(run_id, now, [rules.aborted_event(run, reason)])
        return run

    async def set_budget(
        self, run_id: str, *, epoch: int, max_tokens: int | None, max_cost_usd: float | None
    ) -> RunState:
        self._check_open()
        check_run_id(run_id)
        params = rules.budget_params(run_id, epoch, max_tokens, max_cost_usd)
        run = self._fenced(run_id, epoch)
        if run.status is not RunStatus.RUNNING:
            raise rules.fence_refusal(run_id, run.epoch, epoch)
        now = self._clock()
        run = self._put(
            run,
            max_tokens=params["max_tokens"],
            max_cost_usd=params["max_cost_usd"],
            updated_at=now,
        )
        self._emit(run_id, now, [rules.budget_event(params)])
        return run

    # -- StepStore -------------------------------------------------------------------------

    async def commit_step(self, run_id: str, step: Step, *, epoch: int) -> RunState:
        self._check_open()
        run = self._fenced(run_id, epoch)
        known = self._tasks[run_id]
        for task_id in [*step.results, *(a.task_id for a in step.attempts)]:
            if task_id not in known and all(task.id != task_id for task in step.tasks):
                raise rules.missing_task(run_id, task_id)
        ledger = self._journal_check(run_id, step)  # refuses a step repeating an attempt
        now = self._clock()
        events = self._new_events(run_id, now, step.events)
        for task in step.tasks:
            self._upsert_task(run_id, task)
        self._results[run_id].update(step.results)
        self._events.extend(events)
        if step.approval is not None:
            self._record_approval(step.approval, now)
        changes: dict[str, Any] = {
            "phase": step.phase,
            "iteration": step.iteration,
            "current_task_id": step.current_task_id,
            "updated_at": now,
            **self._counts(run_id),
        }
        if step.attempts or step.calls:
            self._journal_write(run_id, step)
            changes.update(
                requests=run.requests + ledger["requests"],
                tokens_in=run.tokens_in + ledger["tokens_in"],
                tokens_out=run.tokens_out + ledger["tokens_out"],
                cost_unknown=run.cost_unknown + ledger["cost_unknown"],
            )
            if ledger["cost"] is not None:
                changes["cost_usd"] = (run.cost_usd or 0.0) + ledger["cost"]
        if step.status is not None:
            changes.update(
                status=step.status,
                result=step.result,
                error=step.error,
                pause_reason=step.pause_reason,
                pause_detail=step.pause_detail,
            )
            if step.status.finished:
                changes["finished_at"] = now
            if step.status is not RunStatus.RUNNING:
                changes.update(owner=None, lease_expires_at=None)
        return self._put(run, **changes)

    # -- PruneStore ------------------------------------------------------------------------

    def _prunable(
        self, statuses: Sequence[RunStatus], older_than: timedelta, keep_last: int, limit: int
    ) -> list[str] | None:
        """Prunable run ids in run id order (at most ``limit``), None if none can be."""
        wanted = rules.prune_statuses(statuses)
        rules.prune_limits(older_than, keep_last, limit)
        cutoff = (self._clock() - older_than).timestamp()
        boundary = None
        if keep_last:
            boundary = rules.prune_boundary(self._runs.values(), wanted, keep_last)
            if boundary is None:
                return None
        newest = next((e.run_id for e in reversed(self._events) if e is not None), None)
        ids = sorted(
            run_id
            for run_id, run in self._runs.items()
            if rules.prunable(run, wanted, cutoff, boundary, newest)
        )
        return ids[:limit]

    def _owned(self, run_ids: Sequence[str]) -> tuple[int, int]:
        """(tasks, events) the runs own."""
        gone = set(run_ids)
        tasks = sum(len(self._tasks.get(run_id, {})) for run_id in gone)
        return tasks, sum(event is not None and event.run_id in gone for event in self._events)

    async def delete_finished_runs(
        self,
        *,
        statuses: Sequence[RunStatus],
        older_than: timedelta,
        keep_last: int = 0,
        limit: int = 500,
    ) -> PruneCount:
        self._check_open()
        ids = self._prunable(statuses, older_than, keep_last, limit) or []
        if not ids:
            return PruneCount()
        tasks, events = self._owned(ids)
        gone = set(ids)
        for run_id in ids:
            del self._runs[run_id]
            self._tasks.pop(run_id, None)
            self._results.pop(run_id, None)
            self._done_counts.pop(run_id, None)
            self._approvals.pop(run_id, None)
            self._journal_drop(run_id)
        # Event ids are list positions + 1 here: keep each survivor at its id.
        self._events = [
            None if event is None or event.run_id in gone else event for event in self._events
        ]
        self._version += 1
        return PruneCount(candidates=len(ids), runs=len(ids), tasks=tasks, events=events)

    async def count_finished_runs(
        self, *, statuses: Sequence[RunStatus], older_than: timedelta, keep_last: int = 0
    ) -> PruneCount:
        self._check_open()
        ids = self._prunable(statuses, older_than, keep_last, len(self._runs) + 1) or []
        tasks, events = self._owned(ids)
        return PruneCount(candidates=len(ids), runs=len(ids), tasks=tasks, events=events)

    async def reclaim_space(self, *, vacuum: bool = False) -> str:
        self._check_open()
        return "memory store: freed at once"
