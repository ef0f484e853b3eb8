"""``nanoagent abort RUN``: ask the run's worker to stop it at its next checkpoint (or stop a
run that no worker holds at once)."""

from __future__ import annotations

import argparse
from typing import Any

from nanoagent_core.actions import abort_run
from nanoagent_core.command.opening import open_for_run
from nanoagent_core.models import check_run_id
from nanoagent_core.safetext import visible

__all__ = ["add_parser", "run"]

NAME = "abort"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(NAME, parents=[common], help="abort a run")
    parser.add_argument("run_id")


async def run(location: str, args: argparse.Namespace) -> int:
    run_id = check_run_id(args.run_id)
    store = await open_for_run(location, run_id)
    try:
        message = await abort_run(store, run_id)
    finally:
        await store.close()
    print(visible(message))
    return 0
