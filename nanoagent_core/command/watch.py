"""``nanoagent watch``: one line (and optionally a command run) for each run that crashes,
fails or pauses, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from nanoagent_core.command.output import EXIT_PIPE, Stdout, say
from nanoagent_core.errors import ValidationError
from nanoagent_core.stores import open_store
from nanoagent_core.watch import (
    EXEC_TIMEOUT,
    WATCH_INTERVAL,
    WATCHABLE,
    Cursor,
    Transition,
    Watcher,
    check_location,
    database_key,
    default_state_path,
    exec_seconds,
    parse_statuses,
    run_command,
)

__all__ = ["add_parser", "run"]

NAME = "watch"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    watch = sub.add_parser(
        NAME,
        parents=[common],
        help="print a line (and run a command) for each run that crashes, fails or pauses",
    )
    watch.add_argument(
        "--status",
        default=",".join(WATCHABLE),
        metavar="S,S",
        help=f"statuses to watch, comma-separated (default: {','.join(WATCHABLE)};"
        " paused applies once runs can pause)",
    )
    watch.add_argument(
        "--all",
        action="store_true",
        help="on a first start, also report runs already in a watched status",
    )
    watch.add_argument(
        "--state",
        metavar="FILE",
        help="what was reported (default: $XDG_STATE_HOME/nanoagent/watch-<database>.json)",
    )
    watch.add_argument(
        "--exec-timeout",
        type=exec_seconds,
        default=EXEC_TIMEOUT,
        metavar="SECONDS",
        help=f"kill a command still running after this long (default: {EXEC_TIMEOUT:g})",
    )
    watch.add_argument(
        "--exec",
        nargs=argparse.REMAINDER,
        dest="exec_argv",
        metavar="CMD ARG",
        help="last option: run CMD ARG... (no shell) for each transition, one at a time, with"
        " NANOAGENT_RUN_ID, NANOAGENT_STATUS, NANOAGENT_REASON, NANOAGENT_GOAL set"
        f" (the database is looked at every {WATCH_INTERVAL:g} s)",
    )


async def run(location: str, args: argparse.Namespace) -> int:
    """``watch``: one line per transition into a watched status, until Ctrl-C or SIGTERM
    (exit 0) or a closed stdout (141)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    statuses = parse_statuses(args.status)
    check_location(location)
    argv: list[str] | None = args.exec_argv
    if argv is not None:
        if not argv:
            raise ValidationError("--exec needs a command: --exec CMD [ARG...]")
        if shutil.which(argv[0]) is None:
            raise ValidationError(f"--exec: command not found: {argv[0][:200]!r}")
    path = Path(args.state).expanduser() if args.state else default_state_path(location)
    cursor = Cursor.open(path, database_key(location))
    try:
        store = await open_store(location, create=False, read_only=True)
    except BaseException:
        cursor.close()
        raise

    def warn(line: str) -> None:
        print(f"nanoagent watch: {line}", file=sys.stderr, flush=True)

    async def report(transition: Transition) -> None:
        say(transition.line())
        if Stdout.closed:
            raise BrokenPipeError
        if argv:
            await run_command(argv, transition, timeout=args.exec_timeout, warn=warn)

    watcher = Watcher(store, cursor, statuses, report, stop)
    try:
        await watcher.start(report_existing=args.all)
        await watcher.run(warn=warn)
        return 0
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        return EXIT_PIPE
    finally:
        cursor.close()
        await store.close()
