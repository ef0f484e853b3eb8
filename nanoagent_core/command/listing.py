"""``nanoagent list``: runs, newest activity first, as aligned lines or ``--json``. Ids are
never cut."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from nanoagent_core.command.arguments import list_limit
from nanoagent_core.errors import DatabaseNotFoundError
from nanoagent_core.ledger import token_count
from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus, shown_status, stored_statuses, verdicts
from nanoagent_core.stores import AnyStore, open_store

__all__ = ["add_parser", "run", "run_summary"]

NAME = "list"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(NAME, parents=[common], help="list runs, newest activity first")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--status", choices=[s.value for s in ShownStatus])
    parser.add_argument(
        "--limit", type=list_limit, default=None, metavar="N", help="at most N runs (default: all)"
    )


def run_summary(run: RunState, status: ShownStatus | None = None) -> dict[str, Any]:
    """The fields of one run in ``list --json`` (and the top of ``show --json``); ``status``
    is its verdict (status.verdicts), judged now when not given."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "run_id": run.run_id,
        "goal": run.goal,
        "agent": run.agent,
        "status": (status or shown_status(run)).value,
        "phase": run.phase.value,
        "iteration": run.iteration,
        "max_iterations": run.max_iterations,
        "tasks_total": run.tasks_total,
        "tasks_done": run.tasks_done,
        "current_task_id": run.current_task_id,
        "abort_requested": run.abort_requested_at is not None,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "heartbeat_at": iso(run.heartbeat_at),
        "worker_host": run.owner.host if run.owner else None,
        "worker_pid": run.owner.pid if run.owner else None,
        "damaged": run.damaged,  #: why the stored row could not be read whole, or None
        # the ledger: totals over the run's journaled attempts
        "requests": run.requests,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        #: the sum of the known costs (USD); None when no attempt's cost is known
        "cost_usd": run.cost_usd,
        #: False when some attempt made requests at an unknown price (not in cost_usd)
        "cost_complete": run.cost_unknown == 0,
        #: why a paused run is paused ("budget", "approval") and one line more; else None
        "pause_reason": None if run.pause_reason is None else run.pause_reason.value,
        "pause_detail": run.pause_detail,
        #: the run's budget (None: no limit)
        "max_tokens": run.max_tokens,
        "max_cost_usd": run.max_cost_usd,
    }


async def _all_runs(
    store: AnyStore, status: str | None, limit: int | None
) -> list[tuple[RunState, ShownStatus]]:
    wanted = None if status is None else ShownStatus(status)
    stored = stored_statuses(wanted)
    # One query, no OFFSET paging (each page would sort the table again). Stored "running"
    # splits into running and crashed, so those are filtered here before the limit applies.
    # A damaged run shows as damaged whatever its stored status says.
    fetch = 1 << 62 if wanted is not None or limit is None else limit
    batch = await verdicts(store, await store.list_runs(statuses=stored, limit=fetch))
    runs = [(r, shown) for r, shown in batch if wanted is None or shown is wanted]
    return runs if limit is None else runs[:limit]


async def run(location: str, args: argparse.Namespace) -> int:
    try:
        store = await open_store(location, create=False, read_only=location != ":memory:")
    except DatabaseNotFoundError:
        runs: list[tuple[RunState, ShownStatus]] = []
    else:
        try:
            runs = await _all_runs(store, args.status, args.limit)
        finally:
            await store.close()
    if args.json:
        # Compact: the C encoder (an indent falls back to the pure-Python one).
        json.dump([run_summary(run, shown) for run, shown in runs], sys.stdout)
        print()
        return 0
    if not runs:
        print("no runs yet: try 'nanoagent demo' or 'nanoagent run \"a goal\"'")
        return 0
    # Ids are never cut (one pasted into ``show`` must work): the column fits the longest.
    ids = [visible(run.run_id) for run, _ in runs]
    width = max(3, *(len(run_id) for run_id in ids)) + 1
    # A paused run's status says why: ``paused:budget``.
    words = [_status_word(state, shown) for state, shown in runs]
    status_width = max(11, *(len(word) for word in words)) + 1
    # WORKER: pid@host of the worker holding a run (a pool worker holds many), else "-".
    workers = [_worker(state) for state, _ in runs]
    held = max(6, *(len(worker) for worker in workers)) + 2
    print(f"{'STATUS':<{status_width}}{'RUN':<{width}}{'PHASE':<11}{'TASKS':>7}{'ITER':>10}"
          f"{'TOKENS':>9}  {'WORKER':<{held}}GOAL")  # fmt: skip
    for (state, _), run_id, word, worker in zip(runs, ids, words, workers, strict=True):
        tasks = f"{state.tasks_done}/{state.tasks_total}"
        iters = f"{state.iteration}/{state.max_iterations}"
        tokens = token_count(state.tokens_in + state.tokens_out)
        goal = visible(" ".join(state.goal.split()))
        print(f"{word:<{status_width}}{run_id:<{width}}{state.phase.value:<11}{tasks:>7}"
              f"{iters:>10}{tokens:>9}  {worker:<{held}}{goal[:60]}")  # fmt: skip
    return 0


def _status_word(run: RunState, shown: ShownStatus) -> str:
    if shown is ShownStatus.PAUSED and run.pause_reason is not None:
        return f"{shown.value}:{run.pause_reason.value}"
    return shown.value


def _worker(state: RunState) -> str:
    owner = state.owner
    if owner is None or state.status is not RunStatus.RUNNING:
        return "-"
    return visible(f"{owner.pid}@{owner.host}")[:40]
