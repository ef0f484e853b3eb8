"""A worker: claims a run, heartbeats, drives the loop, and records how it stopped.

* Every ``heartbeat`` seconds it renews its lease (``3 * heartbeat``) and looks for an abort
  request; a request cancels the in-flight body and the run is recorded ``aborted``.
* SIGTERM / SIGINT cancel the current step; the run is recorded ``interrupted``.
* A worker whose lease was lost (another worker claimed the run) stops at once and writes
  nothing more: every write it makes is fenced by its epoch.
* A run that pauses (its budget spent, or an executor's ``pause``) commits that step and the
  loop returns: the worker ends with the run ``paused``, owner and lease released.

Run detached as ``python -P -m nanoagent_core.worker_main RUN_ID`` with the location in
``NANOAGENT_DB`` (see nanoagent_core.launch). Trouble it rides out (a heartbeat that could not
renew the lease) is logged on the ``nanoagent_core.worker`` logger, at WARNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import signal
from collections.abc import Awaitable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Protocol, TypeVar

from nanoagent_core import store_rules as rules
from nanoagent_core.agents.base import Agent, ExecutionResult, Reflection
from nanoagent_core.agents.registry import load_agent
from nanoagent_core.budget import Budget
from nanoagent_core.defaults import DEFAULT_HEARTBEAT, FAULT_KILL_AFTER_COMMIT, lease_seconds
from nanoagent_core.errors import (
    DatabaseBusyError,
    LeaseLostError,
    NanoagentError,
    RunAbortedError,
    RunBusyError,
    ValidationError,
)
from nanoagent_core.launch import announce_claim
from nanoagent_core.logs import safe_text
from nanoagent_core.loop import DEFAULT_MAX_FAILURES, Loop, LoopStore, StepListener
from nanoagent_core.models import EventKind, RunState, RunStatus, Task
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import LeaseStore, NewEvent, RunStore, Step
from nanoagent_core.status import check_not_held, check_readable

__all__ = [
    "DEFAULT_HEARTBEAT",
    "FAULT_KILL_AFTER_COMMIT",
    "FAULT_KILL_IN_CALL",
    "WorkerStore",
    "drive",
    "fault_in_body",
    "fault_injector",
    "resume_run",
]

# FAULT_KILL_AFTER_COMMIT (nanoagent_core.defaults) is a test fault injector: the worker
# SIGKILLs itself right after its k-th committed step (each step the loop commits counts:
# planning, a task's start or outcome, a reflection). tests/loop uses it to crash a worker at
# every checkpoint position.

#: Test fault injector, never set in normal use: ``NANOAGENT_FAULT_KILL_IN_BODY=k`` makes the
#: worker SIGKILL itself while the k-th task body it started is running (the body has begun,
#: its outcome is not committed).
FAULT_KILL_IN_BODY = "NANOAGENT_FAULT_KILL_IN_BODY"
#: Test fault injector, never set in normal use: ``NANOAGENT_FAULT_HOLD_BEFORE_CLAIM=PATH``
#: (a FIFO) makes a worker, with its agent loaded and about to claim, create ``PATH.ready``
#: and read ``PATH`` until a writer closes it (a test looks at the run in between, or kills
#: the worker there).
FAULT_HOLD_BEFORE_CLAIM = "NANOAGENT_FAULT_HOLD_BEFORE_CLAIM"
#: Test fault injector, never set in normal use: ``NANOAGENT_FAULT_KILL_IN_CALL=ROLE:k``
#: (ROLE ``planner`` or ``reflector``) makes the worker SIGKILL itself while the k-th call of
#: that role it started is running (the call has begun, its outcome is not committed).
FAULT_KILL_IN_CALL = "NANOAGENT_FAULT_KILL_IN_CALL"

T = TypeVar("T")

_log = logging.getLogger(__name__)


class WorkerStore(LoopStore, LeaseStore, RunStore, Protocol):
    """What a worker needs of a store."""


class _Stop(Enum):
    ABORT = "abort"
    INTERRUPT = "interrupt"
    LEASE_LOST = "lease lost"


async def resume_run(
    store: WorkerStore,
    run_id: str,
    *,
    heartbeat: float = DEFAULT_HEARTBEAT,
    max_failures: int = DEFAULT_MAX_FAILURES,
    on_step: StepListener | None = None,
    on_claim: StepListener | None = None,
    handle_signals: bool = True,
    budget: Budget | None = None,
) -> RunState:
    """Claim ``run_id`` and drive it to its end. A completed run is returned at once.

    ``budget``: the run's new budget (a raised one, for a run paused by its budget), set
    right after the claim, fenced like a step; None keeps the stored one.

    RunBusyError if a live worker holds it (or another resume won the race),
    UnknownAgentError / ValidationError if its agent cannot be rebuilt (nothing is claimed).
    """
    if not (math.isfinite(heartbeat) and heartbeat > 0):
        raise ValidationError(f"heartbeat must be a positive number of seconds, not {heartbeat!r}")
    run = await store.get_run(run_id)
    check_readable(run)
    if run.status is RunStatus.COMPLETED:
        return run
    if run.owner != current_owner():  # a run this process stored as its own is not busy
        check_not_held(run)  # RunBusyError
    agent = fault_in_body(load_agent(run.agent, run.agent_options))
    if run.status is RunStatus.RUNNING and run.abort_requested_at is not None:
        run = await _apply_pending_abort(store, run)
    if budget is not None:  # a budget no run can have is refused before anything is claimed
        rules.budget_params(run_id, run.epoch, budget.max_tokens, budget.max_cost_usd)
    on_step = fault_injector(on_step)
    await _hold_before_claim()
    claimed = await store.claim_run(
        run_id,
        current_owner(),
        expected_epoch=run.epoch,
        lease_seconds=lease_seconds(heartbeat),
        owner_gone=run.status is RunStatus.RUNNING,  # checked above: nobody live holds it
    )
    announce_claim()
    _log.info("run %s: claimed (epoch %d) by pid %d", run_id, claimed.epoch, os.getpid())
    if budget is not None:
        claimed = await store.set_budget(
            run_id,
            epoch=claimed.epoch,
            max_tokens=budget.max_tokens,
            max_cost_usd=budget.max_cost_usd,
        )
    if on_claim is not None:
        on_claim(claimed, Step(phase=claimed.phase, iteration=claimed.iteration))
    loop = Loop(
        store,
        claimed,
        agent,
        max_failures=max_failures,
        on_step=on_step,
        resumed_pause=run.pause_reason if run.status is RunStatus.PAUSED else None,
    )
    return await drive(store, loop, heartbeat=heartbeat, handle_signals=handle_signals)


async def _apply_pending_abort(store: WorkerStore, run: RunState) -> RunState:
    """An abort was requested, but the worker died before acting on it: the request applies
    now (the run is recorded ``aborted``, with an event), and this resume then takes up the
    aborted run, so the request is never dropped silently."""
    try:
        return await store.abort_unowned(
            run.run_id,
            expected_epoch=run.epoch,
            reason="aborted on request (its worker ended before acting on it)",
        )
    except RunBusyError:
        raise RunBusyError(f"run {run.run_id!r} was claimed by another worker meanwhile") from None


def fault_injector(on_step: StepListener | None) -> StepListener | None:
    """Test fault injector (see FAULT_KILL_AFTER_COMMIT): wraps ``on_step`` so that this
    process kills itself with SIGKILL right after its k-th committed step."""
    raw = os.environ.get(FAULT_KILL_AFTER_COMMIT)
    if not raw:
        return on_step
    after = int(raw)
    committed = 0

    def listener(run: RunState, step: Step) -> None:
        nonlocal committed
        if on_step is not None:
            on_step(run, step)
        committed += 1
        if committed >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    return listener


async def _hold_before_claim() -> None:
    """Test fault injector (see FAULT_HOLD_BEFORE_CLAIM): read the gate (a FIFO) to its end."""
    gate = os.environ.get(FAULT_HOLD_BEFORE_CLAIM)
    if not gate:
        return
    Path(f"{gate}.ready").touch()
    await asyncio.to_thread(Path(gate).read_bytes)  # blocks until the test opens and closes it


def _fault_in_call(agent: Agent, raw: str) -> Agent:
    """Test fault injector (see FAULT_KILL_IN_CALL)."""
    role, _, k = raw.partition(":")
    after, started = int(k), 0

    async def killing(call: Awaitable[T]) -> T:
        nonlocal started
        started += 1
        running = asyncio.ensure_future(call)
        if started >= after:
            await asyncio.sleep(0)  # the call runs up to its first await
            os.kill(os.getpid(), signal.SIGKILL)
        return await running

    planner, reflector = agent.planner, agent.reflector

    class KillingPlanner:
        async def plan(self, goal: str) -> Sequence[str]:
            return await killing(planner.plan(goal))

    class KillingReflector:
        async def reflect(
            self, goal: str, done: Sequence[Task], pending: Sequence[Task]
        ) -> Reflection:
            return await killing(reflector.reflect(goal, done, pending))

    if role == "planner":
        return dataclasses.replace(agent, planner=KillingPlanner())
    return dataclasses.replace(agent, reflector=KillingReflector())


def fault_in_body(agent: Agent) -> Agent:
    """Test fault injector (see FAULT_KILL_IN_BODY and FAULT_KILL_IN_CALL)."""
    in_call = os.environ.get(FAULT_KILL_IN_CALL)
    if in_call:
        agent = _fault_in_call(agent, in_call)
    raw = os.environ.get(FAULT_KILL_IN_BODY)
    if not raw:
        return agent
    after, inner, started = int(raw), agent.executor, 0

    class Killing:
        async def execute(
            self, task: Task, results: Mapping[str, str], key: str
        ) -> ExecutionResult:
            nonlocal started
            started += 1
            body = asyncio.ensure_future(inner.execute(task, results, key))
            if started >= after:
                await asyncio.sleep(0)  # the body runs up to its first await
                os.kill(os.getpid(), signal.SIGKILL)
            return await body

    return dataclasses.replace(agent, executor=Killing())


async def drive(
    store: WorkerStore,
    loop: Loop,
    *,
    heartbeat: float,
    handle_signals: bool = True,
    drain: asyncio.Event | None = None,
    halt: asyncio.Event | None = None,
    requeue: bool = False,
) -> RunState:
    """Run ``loop`` with heartbeats, abort handling and signal handling.

    A pool worker drives many runs in one process and passes its own stop requests instead of
    signals: once ``drain`` is set the step in flight finishes, then the run stops; once
    ``halt`` is set it stops at once (as a signal stops a lone worker). Either way the run is
    recorded interrupted (its event), and with ``requeue`` its status is ``queued`` again, so
    that any pool worker takes it up.
    """
    run_id, epoch = loop.state.run_id, loop.state.epoch
    stops: list[_Stop] = []
    loop_task = asyncio.ensure_future(loop.run())

    def stop(reason: _Stop) -> None:
        if not stops:
            stops.append(reason)
            loop_task.cancel()

    beat = asyncio.ensure_future(_heartbeat(store, run_id, epoch, heartbeat, stop))
    signals = _install_signals(stop) if handle_signals else []
    watchers = _watch_requests(loop, stop, drain, halt)
    failure: BaseException | None = None
    try:
        done = await loop_task
        if done.status is not RunStatus.RUNNING:
            return done
        stops.append(_Stop.INTERRUPT)  # drained: the step in flight finished, then it stopped
    except asyncio.CancelledError:
        if not stops:  # cancelled from outside, not by us
            raise
    except RunAbortedError:
        stops.append(_Stop.ABORT)
    except LeaseLostError:
        raise
    except Exception as exc:
        failure = exc
    finally:
        for task in (beat, *watchers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        _remove_signals(signals)
        if not loop_task.done():
            loop_task.cancel()
    if isinstance(failure, DatabaseBusyError):
        # Another process held the write lock past the busy timeout: not the run's fault.
        cause = f"another process holding the write lock past the busy timeout ({failure})"
        return await _record_stop(store, run_id, epoch, _Stop.INTERRUPT, cause, requeue=requeue)
    if failure is not None:
        return await _record_failure(store, run_id, epoch, failure)
    reason = stops[0]
    if reason is _Stop.LEASE_LOST:
        raise LeaseLostError(f"lease on run {run_id!r} lost to another worker; stopped")
    cause = "its pool worker stopping" if drain is not None or halt is not None else None
    return await _record_stop(store, run_id, epoch, reason, cause, requeue=requeue)


def _watch_requests(
    loop: Loop, stop: _StopFn, drain: asyncio.Event | None, halt: asyncio.Event | None
) -> list[asyncio.Future[None]]:
    """Tasks that act on a pool's stop requests (none for a lone worker)."""

    async def on_drain(event: asyncio.Event) -> None:
        await event.wait()
        loop.stop_after_step()

    async def on_halt(event: asyncio.Event) -> None:
        await event.wait()
        stop(_Stop.INTERRUPT)

    watchers: list[asyncio.Future[None]] = []
    if drain is not None:
        watchers.append(asyncio.ensure_future(on_drain(drain)))
    if halt is not None:
        watchers.append(asyncio.ensure_future(on_halt(halt)))
    return watchers


async def _heartbeat(
    store: WorkerStore,
    run_id: str,
    epoch: int,
    interval: float,
    stop: _StopFn,
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            run = await store.renew_lease(
                run_id, epoch=epoch, lease_seconds=lease_seconds(interval)
            )
        except LeaseLostError:
            stop(_Stop.LEASE_LOST)
            return
        except NanoagentError as exc:
            # e.g. the database is busy; the lease still has two beats to go
            _log.warning(
                "run %s: heartbeat could not renew the lease (%s: %s); trying again in %gs",
                run_id,
                type(exc).__name__,
                safe_text(exc),
                interval,
            )
            continue
        _log.debug("run %s: lease renewed (epoch %d)", run_id, epoch)
        if run.abort_requested_at is not None:
            stop(_Stop.ABORT)
            return


class _StopFn(Protocol):
    def __call__(self, reason: _Stop, /) -> None: ...


def _install_signals(stop: _StopFn) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop, _Stop.INTERRUPT)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(sig)
    return installed


def _remove_signals(installed: list[signal.Signals]) -> None:
    loop = asyncio.get_running_loop()
    for sig in installed:
        loop.remove_signal_handler(sig)


async def _record_stop(
    store: WorkerStore,
    run_id: str,
    epoch: int,
    reason: _Stop,
    cause: str | None = None,
    *,
    requeue: bool = False,
) -> RunState:
    # Read the position back rather than trusting the loop's copy: a commit cancelled
    # mid-flight may still have landed (it runs to its end on the connection's thread).
    current = await store.get_run(run_id)
    where = {
        "phase": current.phase.value,
        "iteration": current.iteration,
        "task_id": current.current_task_id,
    }
    place = f"{current.phase} (iteration {current.iteration}"
    place += f", task {current.current_task_id})" if current.current_task_id else ")"
    if reason is _Stop.ABORT:
        status, kind = RunStatus.ABORTED, EventKind.RUN_ABORTED
        error = f"aborted on request during {place}"
    else:
        status, kind = RunStatus.INTERRUPTED, EventKind.RUN_INTERRUPTED
        error = f"interrupted by {'a signal' if cause is None else cause} during {place}"
        if requeue:  # a pool's run: back in the queue, for any pool worker
            status, error = RunStatus.QUEUED, f"{error}; queued again"
    step = Step(
        phase=current.phase,
        iteration=current.iteration,
        current_task_id=current.current_task_id,
        status=status,
        error=error,
        events=(NewEvent(kind=kind, data={**where, "reason": error}),),
    )
    return await store.commit_step(run_id, step, epoch=epoch)


async def _record_failure(
    store: WorkerStore, run_id: str, epoch: int, failure: BaseException
) -> RunState:
    message = str(failure) if isinstance(failure, NanoagentError) else repr(failure)
    try:
        current = await store.get_run(run_id)
        step = Step(
            phase=current.phase,
            iteration=current.iteration,
            current_task_id=current.current_task_id,
            status=RunStatus.FAILED,
            error=message,
            events=(NewEvent(kind=EventKind.RUN_FAILED, data={"error": message}),),
        )
        return await store.commit_step(run_id, step, epoch=epoch)
    except NanoagentError:
        raise failure from None


if __name__ == "__main__":
    # ``python -m nanoagent_core.worker`` still starts a worker: the entry point is
    # nanoagent_core.worker_main, above the command line (this module must not import it)
    import runpy

    runpy.run_module("nanoagent_core.worker_main", run_name="__main__", alter_sys=True)
