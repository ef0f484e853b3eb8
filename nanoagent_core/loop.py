"""The checkpointed loop: planning -> executing -> reflecting -> done, one commit per step.

Positions (phase, iteration, current task) and what happens from each:

* ``planning``: ask the planner; commit the tasks together with the first task's start.
* ``executing, i, T``: T's start (attempt n) is committed; run its body; commit its outcome,
  its result and the next position (including the next task's start) in one transaction.
  A worker that finds this position on resume starts attempt n + 1 first.
* ``executing, i, none``: iteration i's task has its outcome; the next position is due. An
  agent with a ``retry_backoff`` gets here after a failed attempt that will be retried: the
  failure commits first, the loop waits (cancellable: an abort or a signal stops the wait),
  then the next position (the next attempt's start) commits. Resume moves on at once.
* ``reflecting, i``: ask the reflector; commit new and cancelled tasks with the next position.
* ``done``: the run has completed.

Before each phase that calls the agent, the run's budget is checked (budget.py): a run that
has spent it commits a pause (status ``paused``, reason ``budget``) at that position and the
loop returns; an executor may pause the run too (``ExecutionResult.pause``: pause.py).

A crash at any instant leaves the previous commit or the next one, never a mix. A task whose
outcome committed is never executed again; an in-flight one runs again (at least once).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from nanoagent_core.agents.base import Agent, ExecutionResult
from nanoagent_core.approvals import ApprovalNeeded, ApprovalRequest, deciding, task_approvals
from nanoagent_core.asking import Asked, asked
from nanoagent_core.budget import body_limits, exhausted, limits_for_body
from nanoagent_core.clip import clip
from nanoagent_core.errors import RunAbortedError
from nanoagent_core.ledger import journal_entry, with_ledger
from nanoagent_core.models import (
    EventKind,
    PauseReason,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
)
from nanoagent_core.partcall import call_part
from nanoagent_core.pause import pause_step
from nanoagent_core.protocols import (
    ApprovalReader,
    ContextStore,
    NewEvent,
    Step,
    StepStore,
    TaskStore,
)
from nanoagent_core.replace import replace
from nanoagent_core.rules import (
    MAX_CANCELLED,
    MAX_NEW_TASKS,
    MAX_PLANNED_TASKS,
    REFLECT_EVERY,
    is_suspicious,
    synthesize_result,
    task_id_for,
)

__all__ = ["DEFAULT_MAX_FAILURES", "Loop", "LoopStore", "StepListener"]

#: Failed attempts in a row after which a task fails and the run with it.
DEFAULT_MAX_FAILURES = 3

StepListener = Callable[[RunState, Step], None]


class LoopStore(StepStore, TaskStore, ContextStore, ApprovalReader, Protocol):
    """What the loop needs of a store."""


_log = logging.getLogger(__name__)


def _seq(task: Task) -> int:
    return task.seq


def _pending_order(task: Task) -> tuple[int, int]:
    return (-task.priority, task.seq)


def _preview(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return clip(text, limit)


class Loop:
    """Drives one claimed run to its end. Cancel the task running :meth:`run` to stop it; the
    caller records why (see worker.py)."""

    def __init__(
        self,
        store: LoopStore,
        run: RunState,
        agent: Agent,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        on_step: StepListener | None = None,
        resumed_pause: PauseReason | None = None,
    ) -> None:
        self._store = store
        #: Why the run was paused when this worker claimed it (None: it was not paused); the
        #: claim cleared the stored reason.
        self.resumed_pause = resumed_pause
        self._run = run
        self._epoch = run.epoch
        self._agent = agent
        self._max_failures = max_failures
        self._on_step = on_step
        self._tasks: dict[str, Task] = {}
        # kept in step with _tasks so that no step scans every task of a long run
        self._pending_ids: set[str] = set()
        #: (order, id) of pending tasks, the next to run on top; entries of tasks no longer
        #: pending (or pending under another order) are dropped when they reach the top
        self._pending_heap: list[tuple[tuple[int, int], str]] = []
        self._done: list[Task] = []  # done tasks in insertion (seq) order
        self._results: dict[str, str] = {}
        self._carry: dict[str, Task] = {}  # changes that ride with the next commit
        self._restart_in_flight = False
        self._approvals: list[ApprovalRequest] = []  #: the run's requests, read at the start
        self._stop_after_step = False

    def stop_after_step(self) -> None:
        """Let the step in flight finish and commit, then return from :meth:`run` with the
        run still running (a pool worker draining on SIGTERM; its caller records why)."""
        self._stop_after_step = True

    @property
    def state(self) -> RunState:
        """The run as of the last commit."""
        return self._run

    async def run(self) -> RunState:
        run_id = self._run.run_id
        for task in await self._store.get_all_tasks(run_id):
            if task.status is TaskStatus.FAILED:  # resuming a failed run: a fresh budget
                task = replace(task, status=TaskStatus.PENDING, failures=0)
                self._carry[task.id] = task
            self._put(task)
        self._results = await self._store.get_all_results(run_id)
        self._approvals = await self._store.get_approvals(run_id)
        self._restart_in_flight = self._run.phase is Phase.EXECUTING
        while self._run.status is RunStatus.RUNNING and not self._stop_after_step:
            if self._run.abort_requested_at is not None:
                raise RunAbortedError("abort requested")
            spent = exhausted(self._run)
            if spent is not None and self._run.phase is not Phase.DONE:
                await self._commit(self._budget_pause(spent))
                break
            phase = self._run.phase
            if phase is Phase.PLANNING:
                step = await self._plan()
            elif phase is Phase.EXECUTING:
                step = await self._execute()
            elif phase is Phase.REFLECTING:
                step = await self._reflect()
            else:  # DONE while still running: only a hand-edited database gets here
                step = self._finish(self._run.iteration, "done")
            await self._commit(step)
        return self._run

    # -- phases ----------------------------------------------------------------------------

    async def _plan(self) -> Step:
        run = self._run
        got = await call_part(run, "planner", lambda: self._agent.planner.plan(run.goal))
        if got.value is None:
            return got.ended(run, self._fail(f"planner failed: {got.error}"))
        cleaned = [d.strip() for d in got.value if d.strip()][:MAX_PLANNED_TASKS]
        if not cleaned:
            failed = self._fail("unable to decompose goal: the planner returned no tasks")
            return got.journaled(failed, "failed")
        added = self._add_tasks(cleaned)
        planned = NewEvent(
            kind=EventKind.PLANNED,
            data={"tasks": [{"id": t.id, "description": _preview(t.description)} for t in added]},
        )
        return got.journaled(self._advance(0, [planned]))

    async def _execute(self) -> Step:
        run = self._run
        iteration = run.iteration
        restart, self._restart_in_flight = self._restart_in_flight, False
        task = self._tasks.get(run.current_task_id or "")
        if task is None or task.status is not TaskStatus.PENDING:
            return self._after_task(iteration, [])  # nothing runnable here: move on
        if restart:
            # The body may or may not have run before the worker died: run it again under
            # the next attempt number, recorded before it starts.
            task = self._started(task)
            await self._commit(
                Step(
                    phase=Phase.EXECUTING,
                    iteration=iteration,
                    current_task_id=task.id,
                    tasks=(task,),
                    events=(self._start_event(task, iteration, resumed=True),),
                )
            )
        key = f"{run.run_id}:{task.id}:{task.attempts}"
        budgeted = run.max_tokens is not None or run.max_cost_usd is not None
        limits = body_limits(run) if budgeted else None
        began = time.monotonic()
        request: Asked | None = None
        try:
            with limits_for_body(limits), deciding(task_approvals(self._approvals, task.id)):
                outcome = await self._agent.executor.execute(task, dict(self._results), key)
        except ApprovalNeeded as need:
            found = asked(run.run_id, task, need, self._approvals)
            request, outcome = (found, found.outcome) if isinstance(found, Asked) else (None, found)
        except Exception as exc:
            outcome = ExecutionResult(False, f"{type(exc).__name__}: {exc}")
        seconds = round(time.monotonic() - began, 4)
        journal = journal_entry(task, outcome, seconds)
        base = {"task_id": task.id, "attempt": task.attempts, "iteration": iteration}
        if outcome.pause is not None:
            # The body stopped short to pause the run: the task stays pending with its
            # failures as they were, and runs again (next attempt) when the run resumes.
            _log.info("run %s: task %s paused the run (%s)", run.run_id, task.id, outcome.output)
            detail = outcome.pause.detail
            if outcome.pause.reason is PauseReason.BUDGET:
                detail = "; ".join(filter(None, [exhausted(with_ledger(run, journal)), detail]))
            step = pause_step(
                outcome.pause.reason,
                detail,
                phase=Phase.EXECUTING,
                iteration=iteration,
                current_task_id=task.id,
                attempts=journal,
                events=() if request is None else (request.event(),),
            )
            if request is not None:  # recorded in the very commit that pauses the run
                step = step.model_copy(update={"approval": request.request})
            return step
        if outcome.success:
            done = replace(
                task,
                status=TaskStatus.DONE,
                result=outcome.output,
                failures=0,
                error=None,
            )
            self._keep(done)
            self._results[task.id] = outcome.output
            event = NewEvent(
                kind=EventKind.TASK_DONE,
                data={**base, "seconds": seconds, "result": _preview(outcome.output)},
            )
            step = self._after_task(iteration, [event])
            return replace(step, results={task.id: outcome.output}, attempts=journal)
        failures = task.failures + 1
        gave_up = failures >= self._max_failures
        failed = replace(
            task,
            failures=failures,
            error=outcome.output,
            status=TaskStatus.FAILED if gave_up else TaskStatus.PENDING,
        )
        self._keep(failed)
        data: dict[str, object] = {
            **base,
            "seconds": seconds,
            "error": outcome.output,
            "will_retry": not gave_up,
        }
        wait = 0.0 if gave_up else self._agent.retry_wait(failures)
        if wait:
            data["retry_in"] = round(wait, 3)
        event = NewEvent(kind=EventKind.TASK_FAILED, data=data)
        if not gave_up:
            _log.info(
                "run %s: task %s failed (attempt %d of %d); retrying in %gs",
                self.state.run_id,
                task.id,
                failures,
                self._max_failures,
                wait,
            )
        if gave_up:
            error = f"task {task.id} failed {failures} attempts in a row: {outcome.output}"
            step = self._fail(error, [event], iteration=iteration, task_id=task.id)
            return replace(step, attempts=journal)
        if wait:
            # The failure is recorded before the wait, the next attempt's start after it.
            await self._commit(
                Step(
                    phase=Phase.EXECUTING,
                    iteration=iteration,
                    current_task_id=None,
                    events=(event,),
                    attempts=journal,
                )
            )
            await asyncio.sleep(wait)
            return self._after_task(iteration, [])
        return replace(self._after_task(iteration, [event]), attempts=journal)

    async def _reflect(self) -> Step:
        iteration = self._run.iteration
        done = list(self._done)
        pending = self._pending()
        goal = self._run.goal
        got = await call_part(
            self._run, "reflector", lambda: self._agent.reflector.reflect(goal, done, pending)
        )
        reflection = got.value
        if reflection is None:
            failed = self._fail(f"reflector failed: {got.error}", iteration=iteration)
            return got.ended(self._run, failed)
        data: dict[str, object] = {"iteration": iteration, "done": reflection.done}
        if reflection.gaps:
            data["gaps"] = [_preview(gap) for gap in list(reflection.gaps)[:20]]
        if reflection.done:
            event = NewEvent(kind=EventKind.REFLECTED, data=data)
            return got.journaled(self._finish(iteration, "reflection", [event]))
        wanted = [d.strip() for d in reflection.new_tasks if d.strip()][:MAX_NEW_TASKS]
        accepted = [d for d in wanted if not is_suspicious(d)]
        added = self._add_tasks(accepted)
        cancelled: list[str] = []
        ignored: list[str] = []
        for task_id in list(reflection.cancel_ids)[:MAX_CANCELLED]:
            task = self._tasks.get(task_id)
            if task is None or task.status is not TaskStatus.PENDING:
                ignored.append(task_id)
                continue
            self._keep(replace(task, status=TaskStatus.CANCELLED))
            cancelled.append(task_id)
        data.update(
            added=[{"id": t.id, "description": _preview(t.description)} for t in added],
            rejected=len(wanted) - len(accepted),
            cancelled=cancelled,
            ignored=ignored,
        )
        return got.journaled(
            self._advance(iteration, [NewEvent(kind=EventKind.REFLECTED, data=data)])
        )

    def _budget_pause(self, spent: str) -> Step:
        """The step that pauses the run at this checkpoint: its budget is spent. A task whose
        start this worker committed but whose body has not run gives that start back (the
        resumed run starts it under the same attempt number); a start found on resume may
        have run before a crash, so it stays counted."""
        run = self._run
        task = self._tasks.get(run.current_task_id or "")
        if (
            run.phase is Phase.EXECUTING
            and not self._restart_in_flight
            and task is not None
            and task.status is TaskStatus.PENDING
            and task.attempts > 0
        ):
            self._keep(task.model_copy(update={"attempts": task.attempts - 1}))
        _log.info("run %s: budget reached (%s); pausing", run.run_id, spent)
        return pause_step(
            PauseReason.BUDGET,
            spent,
            phase=run.phase,
            iteration=run.iteration,
            current_task_id=run.current_task_id,
        )

    # -- positions -------------------------------------------------------------------------

    def _after_task(self, iteration: int, events: list[NewEvent]) -> Step:
        if iteration % REFLECT_EVERY == 0:
            return Step(phase=Phase.REFLECTING, iteration=iteration, events=tuple(events))
        return self._advance(iteration, events)

    def _advance(self, iteration: int, events: list[NewEvent]) -> Step:
        """The position after ``iteration`` is over: the next task's start, a reflection when
        nothing is pending, or the end when max_iterations is reached."""
        if iteration >= self._run.max_iterations:
            return self._finish(iteration, "max_iterations", events)
        iteration += 1
        if not self._pending_ids:
            return Step(phase=Phase.REFLECTING, iteration=iteration, events=tuple(events))
        task = self._started(self._next_pending())
        return Step(
            phase=Phase.EXECUTING,
            iteration=iteration,
            current_task_id=task.id,
            events=(*events, self._start_event(task, iteration)),
        )

    def _finish(self, iteration: int, reason: str, events: Iterable[NewEvent] = ()) -> Step:
        done = self._done
        result = synthesize_result(done)
        end = NewEvent(
            kind=EventKind.RUN_COMPLETED,
            data={"reason": reason, "iteration": iteration, "tasks_done": len(done)},
        )
        return Step(
            phase=Phase.DONE,
            iteration=iteration,
            events=(*events, end),
            status=RunStatus.COMPLETED,
            result=result,
        )

    def _fail(
        self,
        error: str,
        events: Iterable[NewEvent] = (),
        *,
        iteration: int | None = None,
        task_id: str | None = None,
    ) -> Step:
        run = self._run
        at = run.iteration if iteration is None else iteration
        end = NewEvent(
            kind=EventKind.RUN_FAILED,
            data={"error": error, "phase": run.phase.value, "iteration": at, "task_id": task_id},
        )
        return Step(
            phase=run.phase,
            iteration=at,
            current_task_id=task_id if task_id is not None else run.current_task_id,
            events=(*events, end),
            status=RunStatus.FAILED,
            error=error,
        )

    # -- tasks -----------------------------------------------------------------------------

    def _pending_tasks(self) -> Iterator[Task]:
        return (self._tasks[task_id] for task_id in self._pending_ids)

    def _pending(self) -> list[Task]:
        """Pending tasks, the next to run first (priority, then insertion order)."""
        return sorted(self._pending_tasks(), key=_pending_order)

    def _next_pending(self) -> Task:
        """The pending task to run next (there is one): the first of :meth:`_pending`."""
        heap = self._pending_heap
        while True:
            order, task_id = heap[0]
            task = self._tasks[task_id]
            if task.status is TaskStatus.PENDING and _pending_order(task) == order:
                return task
            heapq.heappop(heap)

    def _put(self, task: Task) -> None:
        """Set a task in the mirror and in the pending and done indexes."""
        was = self._tasks.get(task.id)
        self._tasks[task.id] = task
        if task.status is TaskStatus.PENDING:
            order = _pending_order(task)
            if was is None or was.status is not TaskStatus.PENDING or _pending_order(was) != order:
                heapq.heappush(self._pending_heap, (order, task.id))
            self._pending_ids.add(task.id)
        else:
            self._pending_ids.discard(task.id)
        if was is not None and was.status is TaskStatus.DONE:
            del self._done[bisect.bisect_left(self._done, was.seq, key=_seq)]
        if task.status is TaskStatus.DONE:
            bisect.insort(self._done, task, key=_seq)

    def _keep(self, task: Task) -> None:
        """Change a task in the mirror; the change rides with the next commit."""
        self._put(task)
        self._carry[task.id] = task

    def _started(self, task: Task) -> Task:
        started = replace(task, attempts=task.attempts + 1)
        self._keep(started)
        return started

    def _add_tasks(self, descriptions: Iterable[str]) -> list[Task]:
        added: list[Task] = []
        for description in descriptions:
            seq = len(self._tasks)
            task_id = task_id_for(self._run.goal, seq, description, self._tasks)
            task = Task(id=task_id, description=description, seq=seq)
            self._keep(task)
            added.append(task)
        return added

    def _start_event(self, task: Task, iteration: int, *, resumed: bool = False) -> NewEvent:
        data: dict[str, object] = {
            "task_id": task.id,
            "attempt": task.attempts,
            "iteration": iteration,
            "description": _preview(task.description),
        }
        if resumed:
            data["resumed"] = True
        return NewEvent(kind=EventKind.TASK_STARTED, data=data)

    async def _commit(self, step: Step) -> None:
        if self._carry:
            step = replace(step, tasks=tuple(self._carry.values()))
        run = await self._store.commit_step(self._run.run_id, step, epoch=self._epoch)
        self._carry.clear()
        self._run = run
        if self._on_step is not None:
            self._on_step(run, step)
