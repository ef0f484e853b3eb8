"""``nanoagent run GOAL``: start a run, in the foreground (its events printed as they commit)
or in a detached worker (``--detach``)."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from nanoagent_core.actions import new_run, start_detached
from nanoagent_core.budget import Budget
from nanoagent_core.command.arguments import NO_LIMIT, budget_options, iterations, worker_options
from nanoagent_core.command.output import EXIT_CODES, claim_printer, say, step_printer
from nanoagent_core.defaults import DEFAULT_MAX_ITERATIONS
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import RunStatus
from nanoagent_core.options import parse_option_pairs
from nanoagent_core.paths import MEMORY, display_location
from nanoagent_core.pause import pause_text
from nanoagent_core.safetext import visible
from nanoagent_core.stores import AnyStore, open_store
from nanoagent_core.worker import resume_run

__all__ = ["add_parser", "drive", "run"]

NAME = "run"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(NAME, parents=[common], help="start a run")
    parser.add_argument("goal")
    parser.add_argument("--agent", default="demo")
    parser.add_argument(
        "--max-iterations", type=iterations, default=DEFAULT_MAX_ITERATIONS, metavar="N"
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="agent option"
    )
    parser.add_argument("--run-id", metavar="ID")
    parser.add_argument("--detach", action="store_true", help="run in a background worker")
    budget_options(parser, raising=False)
    parser.add_argument(
        "--enqueue",
        action="store_true",
        help="store the run as queued for a pool worker ('nanoagent worker') and print its id",
    )
    worker_options(parser)


async def run(location: str, args: argparse.Namespace) -> int:
    if args.enqueue and location == MEMORY:
        raise ValidationError(
            "--enqueue stores the run for a pool worker: it needs a shared database, not ':memory:'"
        )
    if args.enqueue and args.detach:
        raise ValidationError(
            "--enqueue and --detach: choose one (a pool worker runs a queued run)"
        )
    run_id = args.run_id if args.run_id is not None else uuid.uuid4().hex[:12]
    state = new_run(
        run_id,
        args.goal,
        agent=args.agent,
        max_iterations=args.max_iterations,
        options=parse_option_pairs(args.option),
        heartbeat=args.heartbeat,
        claimed_here=not args.detach,  # in the foreground, this process claims it
    )
    tokens, cost = args.max_tokens, args.max_cost
    state = state.model_copy(
        update={
            "max_tokens": None if tokens in (None, NO_LIMIT) else tokens,
            "max_cost_usd": None if cost in (None, NO_LIMIT) else cost,
        }
    )
    if args.enqueue:  # no owner, no lease: a pool worker claims it
        state = state.model_copy(
            update={"status": RunStatus.QUEUED, "owner": None, "lease_expires_at": None}
        )
    store = await open_store(location, create=True)
    try:
        if args.enqueue:
            await store.create_run(state)
            print(run_id)
            return 0
        if args.detach:
            await start_detached(
                store, location, state, heartbeat=args.heartbeat, log_level=args.log_level
            )
            print(run_id)
            return 0
        await store.create_run(state)
        say(f"run {run_id} in {display_location(location)}")
        return await drive(store, run_id, args, quiet=False)
    finally:
        await store.close()


async def drive(
    store: AnyStore,
    run_id: str,
    args: argparse.Namespace,
    *,
    quiet: bool,
    budget: Budget | None = None,
) -> int:
    """Claim the run in this process and drive it to its end; exit by its final status.
    ``budget``: a new budget for the run, set right after the claim (resume)."""
    final = await resume_run(
        store,
        run_id,
        heartbeat=args.heartbeat,
        on_step=step_printer(quiet),
        on_claim=claim_printer(quiet),
        budget=budget,
    )
    if not quiet:
        line = f"run {run_id} {final.status}"
        if final.pause_reason is not None:
            line += f": {pause_text(final.pause_reason, final.pause_detail)}"
        elif final.error:
            line += f": {visible(final.error)}"
        say(line)
    return EXIT_CODES[final.status]
