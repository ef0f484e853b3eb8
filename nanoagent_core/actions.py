"""What a person does to runs, shared by the command line and the dashboard: start a run in
a detached worker, resume one in a detached worker, abort one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Protocol

from nanoagent_core.agents.registry import load_agent
from nanoagent_core.clip import quoted
from nanoagent_core.defaults import DEFAULT_HEARTBEAT, DEFAULT_MAX_ITERATIONS, lease_seconds
from nanoagent_core.errors import RunBusyError, RunFinishedError, ValidationError
from nanoagent_core.launch import start_worker
from nanoagent_core.models import RunState, RunStatus, check_run_id, utc_now, validated
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import LeaseStore, RunStore
from nanoagent_core.status import check_not_held, check_readable, held_by_live_worker

__all__ = [
    "MAX_OPTIONS",
    "MAX_OPTION_KEY_CHARS",
    "MAX_OPTION_VALUE_CHARS",
    "ActionStore",
    "abort_run",
    "check_resumable",
    "check_text",
    "new_run",
    "resume_detached",
    "start_detached",
]


class ActionStore(RunStore, LeaseStore, Protocol):
    """What the actions need of a store."""


#: Limits on a new run's agent options (a run stores them; every viewer shows them).
MAX_OPTIONS = 50
MAX_OPTION_KEY_CHARS = 64
MAX_OPTION_VALUE_CHARS = 4096

#: How long a new run waits for its worker to claim it before it shows as crashed.
CLAIM_GRACE = 10.0


def new_run(
    run_id: str,
    goal: str,
    *,
    agent: str = "demo",
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    options: Mapping[str, str] | None = None,
    heartbeat: float = DEFAULT_HEARTBEAT,
    claim_grace: float | None = None,
    claimed_here: bool = False,
) -> RunState:
    """A validated new run (agent and options checked too); not stored yet.

    ``claim_grace``: how long the stored run waits for its worker to claim it before it shows
    as crashed; by default long enough for a detached worker to start (CLAIM_GRACE).

    ``claimed_here``: this very process claims the run next (a foreground ``run``). The run is
    stored with this process as its owner and one lease, as if claimed already: while the
    process loads its agent and claims (seconds on a loaded machine) every viewer sees it
    ``running``, never ``crashed``; if the process dies before claiming, viewers on this host
    see ``crashed`` at once (its pid is gone), elsewhere when the lease ends, as for any worker.
    """
    opts = dict(options or {})
    check_text("goal", goal)
    check_text("agent", agent)
    _check_options(opts)
    load_agent(agent, opts)  # an unknown agent or a bad option is refused before storing
    grace = max(CLAIM_GRACE, lease_seconds(heartbeat)) if claim_grace is None else claim_grace
    if claimed_here:
        grace = lease_seconds(heartbeat)
    return validated(
        RunState,
        run_id=check_run_id(run_id),
        goal=goal,
        max_iterations=max_iterations,
        agent=agent,
        agent_options=opts,
        lease_expires_at=utc_now() + timedelta(seconds=grace),
        owner=current_owner() if claimed_here else None,
    )


def check_text(what: str, value: str) -> str:
    """``value`` unless it holds a lone surrogate: bytes that were not UTF-8 on the command
    line (Python decodes them with surrogateescape), which no store can hold as text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} {quoted(value)} is not valid UTF-8 text") from None
    return value


def _check_options(options: Mapping[str, str]) -> None:
    if len(options) > MAX_OPTIONS:
        raise ValidationError(f"at most {MAX_OPTIONS} agent options, not {len(options)}")
    for key, value in options.items():
        check_text("option name", key)
        if len(key) > MAX_OPTION_KEY_CHARS:
            raise ValidationError(
                f"option name {quoted(key)} is longer than {MAX_OPTION_KEY_CHARS} characters"
            )
        check_text(f"option {quoted(key)}: value", value)
        if len(value) > MAX_OPTION_VALUE_CHARS:
            raise ValidationError(
                f"option {quoted(key)}: its value is {len(value):,} characters, more than "
                f"{MAX_OPTION_VALUE_CHARS:,}"
            )


async def start_detached(
    store: RunStore,
    location: str,
    run: RunState,
    *,
    heartbeat: float | None = None,
    log_level: str | None = None,
) -> int:
    """Store ``run`` and start a detached worker for it; returns the worker's pid once the
    worker has claimed the run (WorkerStartError with its first error line otherwise)."""
    await store.create_run(run)
    return await start_worker(
        location, run.run_id, heartbeat=heartbeat, new=True, log_level=log_level
    )


def check_resumable(run: RunState) -> None:
    """RunBusyError while a live worker holds the run; returns for anything resume takes up
    (a completed run included: resuming it returns at once)."""
    check_readable(run)
    check_not_held(run)


async def resume_detached(
    store: RunStore,
    location: str,
    run_id: str,
    *,
    heartbeat: float | None = None,
    log_level: str | None = None,
    worker_args: Sequence[str] = (),
) -> int:
    """Start a detached worker that resumes ``run_id``; returns its pid once it has claimed
    the run (WorkerStartError with its first error line otherwise). The worker's claim is
    the compare-and-set: of two racing resumes exactly one proceeds."""
    run = await store.get_run(run_id)
    check_resumable(run)
    if run.status is RunStatus.COMPLETED:
        raise RunFinishedError(f"run {run_id!r} has already completed")
    load_agent(run.agent, run.agent_options)
    return await start_worker(
        location, run_id, heartbeat=heartbeat, log_level=log_level, worker_args=worker_args
    )


async def abort_run(store: ActionStore, run_id: str) -> str:
    """Abort ``run_id``: a request that a live worker acts on within one heartbeat or, with no
    live worker, aborted at once. RunFinishedError for a finished run. Says what happened."""
    for _ in range(3):
        run = await store.get_run(run_id)
        check_readable(run)
        if run.status.finished:
            raise RunFinishedError(f"run {run_id!r} has already finished ({run.status})")
        if held_by_live_worker(run) and run.owner is not None:
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
