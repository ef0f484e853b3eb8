"""What a person does to runs, shared by the command line and the dashboard: start a run in
a detached worker, resume one in a detached worker, abort one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol

from nanoagent_core.agents.registry import load_agent
from nanoagent_core.errors import RunBusyError, RunFinishedError
from nanoagent_core.launch import start_worker
from nanoagent_core.models import RunState, RunStatus, check_run_id, utc_now, validated
from nanoagent_core.protocols import LeaseStore, RunStore
from nanoagent_core.status import owner_gone

__all__ = [
    "ActionStore",
    "abort_run",
    "check_resumable",
    "new_run",
    "resume_detached",
    "start_detached",
]


class ActionStore(RunStore, LeaseStore, Protocol):
    """What the actions need of a store."""


#: How long a new run waits for its worker to claim it before it shows as crashed.
CLAIM_GRACE = 10.0


def new_run(
    run_id: str,
    goal: str,
    *,
    agent: str = "demo",
    max_iterations: int = 50,
    options: Mapping[str, str] | None = None,
    heartbeat: float = 2.0,
    claim_grace: float | None = None,
) -> RunState:
    """A validated new run (agent and options checked too); not stored yet.

    ``claim_grace``: how long the stored run waits for its worker to claim it before it shows
    as crashed; by default long enough for a detached worker to start (CLAIM_GRACE). A run
    that this very process claims next passes 0: if the process dies before claiming, the
    run shows as crashed at once rather than ``running`` for the grace period.
    """
    opts = dict(options or {})
    load_agent(agent, opts)  # an unknown agent or a bad option is refused before storing
    grace = max(CLAIM_GRACE, 3 * heartbeat) if claim_grace is None else claim_grace
    return validated(
        RunState,
        run_id=check_run_id(run_id),
        goal=goal,
        max_iterations=max_iterations,
        agent=agent,
        agent_options=opts,
        lease_expires_at=utc_now() + timedelta(seconds=grace),
    )


async def start_detached(
    store: RunStore, location: str, run: RunState, *, heartbeat: float | None = None
) -> int:
    """Store ``run`` and start a detached worker for it; returns the worker's pid once the
    worker has claimed the run (WorkerStartError with its first error line otherwise)."""
    await store.create_run(run)
    return await start_worker(location, run.run_id, heartbeat=heartbeat, new=True)


def check_resumable(run: RunState) -> None:
    """RunBusyError while a live worker holds the run; returns for anything resume takes up
    (a completed run included: resuming it returns at once)."""
    if run.status is RunStatus.RUNNING and run.owner is not None and not owner_gone(run):
        raise RunBusyError(
            f"run {run.run_id!r} is held by a live worker (pid {run.owner.pid} on {run.owner.host})"
        )


async def resume_detached(
    store: RunStore, location: str, run_id: str, *, heartbeat: float | None = None
) -> int:
    """Start a detached worker that resumes ``run_id``; returns its pid once it has claimed
    the run (WorkerStartError with its first error line otherwise). The worker's claim is
    the compare-and-set: of two racing resumes exactly one proceeds."""
    run = await store.get_run(run_id)
    check_resumable(run)
    if run.status is RunStatus.COMPLETED:
        raise RunFinishedError(f"run {run_id!r} has already completed")
    load_agent(run.agent, run.agent_options)
    return await start_worker(location, run_id, heartbeat=heartbeat)


async def abort_run(store: ActionStore, run_id: str) -> str:
    """Abort ``run_id``: a request that a live worker acts on within one heartbeat or, with no
    live worker, aborted at once. RunFinishedError for a finished run. Says what happened."""
    for _ in range(3):
        run = await store.get_run(run_id)
        if run.status.finished:
            raise RunFinishedError(f"run {run_id!r} has already finished ({run.status})")
        if run.status is RunStatus.RUNNING and run.owner is not None and not owner_gone(run):
            await store.request_abort(run_id)
            return f"abort requested: worker pid {run.owner.pid} on {run.owner.host} stops it"
        try:
            await store.abort_unowned(
                run_id, expected_epoch=run.epoch, reason="aborted on request (no live worker)"
            )
        except RunBusyError:
            continue  # a worker claimed it meanwhile: ask that one
        return f"run {run_id} aborted"
    raise RunBusyError(f"run {run_id!r} keeps changing hands; try again")
