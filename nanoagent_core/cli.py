"""The ``nanoagent`` command: parse the line, dispatch to a subcommand (one module each in
``nanoagent_core.command``), and turn every failure into one line and an exit status. The
dashboard (``tui``, ``demo``, ``serve``) comes from nanoagent_tui, handed in by its entry
point. Bad input: one line on stderr, exit 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from types import ModuleType
from typing import Any

from nanoagent_core.command import (
    abort,
    approve,
    listing,
    prune,
    replay,
    resume,
    run,
    show,
    watch,
    worker,
)
from nanoagent_core.command import serve as serve_command
from nanoagent_core.command.arguments import MAX_LIST_LIMIT, Parser
from nanoagent_core.command.listing import run_summary
from nanoagent_core.command.output import EXIT_CODES, EXIT_PIPE, Stdout, stdout_gone, unexpected
from nanoagent_core.command.serve import Serve
from nanoagent_core.defaults import WORKER_LOG_LIMIT
from nanoagent_core.errors import NanoagentError, ValidationError
from nanoagent_core.logs import configure as configure_logging
from nanoagent_core.paths import resolve_db_location
from nanoagent_core.safetext import visible

#: The dashboard's bell setting (``0``: no bell), see nanoagent_tui/attention.py.
BELL_ENV = "NANOAGENT_BELL"

__all__ = ["COMMANDS", "EXIT_CODES", "EXIT_PIPE", "MAX_LIST_LIMIT", "main", "run_summary"]

#: The subcommands that run on a database location: each module has ``NAME``,
#: ``add_parser(sub, common)`` and ``async def run(location, args) -> int``. Help lists them
#: in this order, after ``tui`` and ``demo`` and before ``serve``. A new command: a module
#: with those three, added here.
COMMANDS: tuple[ModuleType, ...] = (
    run,
    resume,
    abort,
    approve,
    listing,
    show,
    replay,
    watch,
    prune,
    worker,
)

#: Opens the dashboard on a location -> exit status.
Dashboard = Callable[[str], int]


def _build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="database path (default: $NANOAGENT_DB, else $XDG_DATA_HOME/nanoagent/nanoagent.db)",
    )
    parser = Parser(
        prog="nanoagent",
        description="Durable agent runs: plan, execute, reflect; survive crashes; resume.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    tui = sub.add_parser("tui", parents=[common], help="open the dashboard (the default)")
    demo = sub.add_parser(
        "demo", parents=[common], help="start demo runs (one crashed) and open the dashboard"
    )
    demo.add_argument("--no-dashboard", action="store_true", help="start the runs and exit")
    for dash in (parser, tui, demo):
        dash.add_argument(
            "--no-bell",
            action="store_true",
            default=argparse.SUPPRESS,
            help="no terminal bell when a run comes to need a person (also: NANOAGENT_BELL=0)",
        )
    for command in COMMANDS:
        command.add_parser(sub, common)
    serve_command.add_parser(sub, common)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    dashboard: Dashboard | None = None,
    serve: Serve | None = None,
) -> int:
    """The command. Bad input: one line on stderr and exit 2; an unexpected error: one line
    and exit 1, never a traceback. A closed stdout: see EXIT_PIPE."""
    args = _build_parser().parse_args(argv)
    Stdout.closed = False
    if sys.stdout is None:  # pyright: ignore[reportUnnecessaryComparison]
        # started with fd 1 closed: write to /dev/null, which also takes fd 1 so that no
        # database file opened later can land on it
        Stdout.closed = True
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    try:
        return _main(args, dashboard, serve)
    except NanoagentError as exc:
        print(f"nanoagent: {visible(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        stdout_gone()
        return EXIT_PIPE
    except Exception as exc:  # a bug or an unforeseen failure: one line, no traceback, no locals
        print(f"nanoagent: unexpected error: {unexpected(exc)}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace, dashboard: Dashboard | None, serve: Serve | None) -> int:
    explicit = getattr(args, "db", None)
    if explicit == "":
        raise ValidationError("--db takes a database path or address, not an empty string")
    location = resolve_db_location(explicit)
    try:
        location.encode("utf-8")  # SQLite and PostgreSQL take locations as UTF-8 text
    except UnicodeEncodeError:
        raise ValidationError("the database location is not valid UTF-8 text") from None
    command = args.command or "tui"
    if command == "serve":
        return serve_command.run(location, args, serve)
    if command in ("tui", "demo"):
        if getattr(args, "no_bell", False):
            os.environ[BELL_ENV] = "0"  # read by the dashboard (nanoagent_tui.attention)
        if command == "demo":
            from nanoagent_core.demo import start_demo_runs

            ids = asyncio.run(start_demo_runs(location))
            if args.no_dashboard or dashboard is None:
                print("\n".join(ids), flush=True)
                return 0
        if dashboard is None:
            raise ValidationError("the dashboard is not installed; try 'nanoagent list'")
        return dashboard(location)
    if command in ("run", "resume"):
        # --quiet is the detached worker's mode: its stderr is its log file, kept bounded
        configure_logging(
            args.log_level, limit=WORKER_LOG_LIMIT if getattr(args, "quiet", False) else None
        )
    handler: Callable[[str, argparse.Namespace], Coroutine[Any, Any, int]] = _HANDLERS[command]
    code = asyncio.run(handler(location, args))
    sys.stdout.flush()  # here, so that a closed pipe is seen (not at the interpreter's exit)
    return code


_HANDLERS: dict[str, Callable[[str, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    command.NAME: command.run for command in COMMANDS
}
