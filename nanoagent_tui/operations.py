"""What the dashboard does to runs: resume, abort, start. No Textual here.

Each opens its own short-lived read-write connection and goes through nanoagent_core.actions,
the same fenced calls as the command line: an abort request (or an abort of a run no live
worker holds), a resume claim made by a detached worker, a new run stored then taken up by a
detached worker. Workers are started without a shell and outlive the dashboard.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from nanoagent_core import deciding
from nanoagent_core.actions import abort_run, new_run, resume_detached, start_detached
from nanoagent_core.defaults import DEFAULT_MAX_ITERATIONS
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import MAX_ITERATIONS, RunState
from nanoagent_core.options import parse_option_text
from nanoagent_core.status import RESUMABLE, ShownStatus
from nanoagent_core.stores import AnyStore, open_store
from nanoagent_tui.formatting import ABORTING, status_word

__all__ = [
    "abort",
    "build_run",
    "decide",
    "parse_options",
    "resume",
    "start",
    "why_not_abortable",
    "why_not_resumable",
]


def why_not_resumable(run: RunState, now: datetime) -> str | None:
    """None when resume takes the run up; otherwise why not, in one line."""
    word = status_word(run, now)
    if word in RESUMABLE:
        return None
    if word == ShownStatus.DAMAGED:
        return f"{run.run_id} is damaged: {run.damaged}"
    if word == ABORTING:
        return f"{run.run_id} is being aborted; resume it once it shows aborted"
    if word == ShownStatus.RUNNING:
        worker = f" (pid {run.owner.pid} on {run.owner.host})" if run.owner else ""
        return f"{run.run_id} is running{worker}: nothing to resume"
    if word == ShownStatus.QUEUED:
        return f"{run.run_id} is queued: a pool worker ('nanoagent worker') takes it up"
    return f"{run.run_id} has completed: nothing to resume"


def why_not_abortable(run: RunState, now: datetime) -> str | None:
    word = status_word(run, now)
    if word == ShownStatus.DAMAGED:
        return f"{run.run_id} is damaged: {run.damaged}"
    if word == ABORTING:
        return f"{run.run_id}: abort already requested; its worker stops at its next heartbeat"
    if run.status.finished:
        return f"{run.run_id} has already finished ({word}): nothing to abort"
    return None


async def _open(location: str, *, create: bool = False) -> AnyStore:
    return await open_store(location, create=create)


async def resume(location: str, run_id: str) -> str:
    """Start a detached worker that claims and resumes the run; says so once the worker holds
    it (WorkerStartError with the worker's first error line if it could not start)."""
    store = await _open(location)
    try:
        pid = await resume_detached(store, location, run_id)
    finally:
        await store.close()
    return f"resuming {run_id} in worker pid {pid}"


async def abort(location: str, run_id: str) -> str:
    store = await _open(location)
    try:
        return await abort_run(store, run_id)
    finally:
        await store.close()


async def decide(
    location: str,
    run_id: str,
    request_id: str,
    digest: str,
    *,
    approve: bool,
    reason: str | None = None,
) -> str:
    """Decide the request shown (its id and digest: a request changed since it was shown is
    refused) and resume the run in a detached worker; says what happened."""
    store = await _open(location)
    try:
        decided = await deciding.decide(
            store,
            location,
            run_id,
            approve=approve,
            request_id=request_id,
            digest=digest,
            reason=reason,
        )
    finally:
        await store.close()
    return decided.line()


async def start(location: str, run: RunState) -> str:
    store = await _open(location, create=True)
    try:
        pid = await start_detached(store, location, run)
    finally:
        await store.close()
    return f"started {run.run_id} in worker pid {pid}"


def parse_options(text: str) -> dict[str, str]:
    """The form's ``KEY=VALUE`` pairs, separated by spaces or commas; a value may hold commas
    (``fail=2,4 delay=0.1`` and ``tasks=3,delay=0.1`` both work); a key given twice is
    refused, as on the command line."""
    return parse_option_text(text, what="options:")


def build_run(goal: str, agent: str, max_iterations: str, options: str) -> RunState:
    """A validated new run from the form's fields (ValidationError / UnknownAgentError)."""
    raw = max_iterations.strip() or str(DEFAULT_MAX_ITERATIONS)
    try:
        iterations = int(raw)
    except ValueError:
        raise ValidationError(f"max iterations: a whole number, not {raw!r}") from None
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValidationError(f"max iterations: between 1 and {MAX_ITERATIONS:,}")
    if not goal.strip():
        raise ValidationError("goal: say what the run should achieve")
    return new_run(
        uuid.uuid4().hex[:12],
        goal.strip(),
        agent=agent,
        max_iterations=iterations,
        options=parse_options(options),
    )
