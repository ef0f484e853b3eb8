"""``nanoagent resume RUN``: take a run up again where it stopped, in the foreground or in a
detached worker. ``--quiet`` and ``--new`` are the detached worker's own mode."""

from __future__ import annotations

import argparse
from typing import Any

from nanoagent_core.actions import check_resumable, resume_detached
from nanoagent_core.command.arguments import (
    budget_args,
    budget_options,
    new_budget,
    worker_options,
)
from nanoagent_core.command.opening import open_for_run
from nanoagent_core.command.output import EXIT_BUSY
from nanoagent_core.command.run import drive
from nanoagent_core.models import RunStatus, check_run_id

__all__ = ["add_parser", "run"]

NAME = "resume"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(NAME, parents=[common], help="resume a run")
    parser.add_argument("run_id")
    parser.add_argument("--detach", action="store_true", help="resume in a background worker")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--new", action="store_true", help=argparse.SUPPRESS)
    budget_options(parser, raising=True)
    worker_options(parser)


async def run(location: str, args: argparse.Namespace) -> int:
    run_id = check_run_id(args.run_id)
    store = await open_for_run(location, run_id)
    try:
        state = await store.get_run(run_id)
        if args.new and (state.epoch != 0 or state.status is not RunStatus.RUNNING):
            return EXIT_BUSY  # a worker for a new run: someone else took it up already
        if state.status is RunStatus.COMPLETED:
            if not args.quiet:
                print(f"run {run_id} completed already")
            return 0
        check_resumable(state)
        budget = new_budget(args, state)
        if args.detach:
            await resume_detached(
                store,
                location,
                run_id,
                heartbeat=args.heartbeat,
                log_level=args.log_level,
                worker_args=budget_args(args),
            )
            print(run_id)
            return 0
        return await drive(store, run_id, args, quiet=args.quiet, budget=budget)
    finally:
        await store.close()
