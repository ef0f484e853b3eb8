"""``nanoagent replay RUN``: run a recorded run's goal again on models that answer from its
recording (no tokens spent) and say whether the outcome is the same (see
nanoagent_core/replay.py). Exit 0 when it is, EXIT_DIFFERENT (7) when it is not, with one
line per difference."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from nanoagent_core.command.opening import open_for_run
from nanoagent_core.command.output import say, step_printer
from nanoagent_core.models import check_run_id
from nanoagent_core.options import parse_option_pairs
from nanoagent_core.replay import EXIT_DIFFERENT, replay_run
from nanoagent_core.safetext import visible

__all__ = ["EXIT_DIFFERENT", "add_parser", "run"]

NAME = "replay"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        NAME,
        parents=[common],
        help="run a recorded llm run again offline from its journal and compare the outcome"
        f" (exit 0 same, {EXIT_DIFFERENT} different)",
    )
    parser.add_argument("run_id")
    parser.add_argument(
        "--as", dest="new_id", metavar="NEW_ID", help="the replay's run id (default: RUN-replay-…)"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replace a recorded agent option for the replay",
    )
    parser.add_argument("--events", action="store_true", help="print the replay's events")


async def run(location: str, args: argparse.Namespace) -> int:
    run_id = check_run_id(args.run_id)
    default = f"{run_id[:50]}-replay-{uuid.uuid4().hex[:6]}"
    new_id = check_run_id(default if args.new_id is None else args.new_id)  # '' is refused
    overrides = parse_option_pairs(args.option)
    store = await open_for_run(location, run_id)
    try:
        report = await replay_run(
            store, run_id, new_id, options=overrides, on_step=step_printer(not args.events)
        )
    finally:
        await store.close()
    replayed = report.replayed
    if replayed.status == "interrupted":  # Ctrl-C or SIGTERM: the replay stopped, not differed
        say(f"replay {visible(new_id)} interrupted")
        return 130
    if report.equal:
        say(
            f"replay {visible(new_id)} equals run {visible(run_id)}: {replayed.status},"
            f" {len(replayed.tasks)} tasks, the same results"
        )
        return 0
    for line in report.differences:
        say(f"differs: {line}")
    count = len(report.differences)
    say(
        f"replay {visible(new_id)} differs from run {visible(run_id)}"
        f" ({count} difference{'s' if count != 1 else ''})"
    )
    return EXIT_DIFFERENT
