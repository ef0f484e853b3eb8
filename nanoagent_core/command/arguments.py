"""Argument types and option groups that several commands share. Bad input: argparse's one
line and exit 2 (see ``Parser``)."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from nanoagent_core.budget import Budget
from nanoagent_core.clip import quoted
from nanoagent_core.defaults import DEFAULT_HEARTBEAT, DEFAULT_LOG_LEVEL, LOG_LEVELS
from nanoagent_core.models import MAX_ITERATIONS, RunState
from nanoagent_core.options import whole_number

__all__ = [
    "MAX_HEARTBEAT",
    "MAX_LIST_LIMIT",
    "NO_LIMIT",
    "Parser",
    "budget_args",
    "budget_options",
    "heartbeat_seconds",
    "iterations",
    "list_limit",
    "max_cost",
    "max_tokens",
    "new_budget",
    "port",
    "worker_options",
]

#: The largest ``list --limit``.
MAX_LIST_LIMIT = 1_000_000_000
#: The longest heartbeat interval ``--heartbeat`` takes, in seconds.
MAX_HEARTBEAT = 3600.0


class Parser(argparse.ArgumentParser):
    """Bad input: one line naming the mistake and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"nanoagent: {message} (see 'nanoagent --help')\n")


def worker_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that drives a run: heartbeat, durability, log level."""
    parser.add_argument(
        "--heartbeat",
        type=heartbeat_seconds,
        default=DEFAULT_HEARTBEAT,
        metavar="SECONDS",
        help="heartbeat interval; the lease lasts three of them",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="synchronous=FULL: commits survive power loss, at about 3x the cost",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=DEFAULT_LOG_LEVEL,
        help=f"log records at this level or above to stderr, or a detached worker's log"
        f" (default: {DEFAULT_LOG_LEVEL}; INFO adds claims, heartbeat trouble and retries)",
    )


def heartbeat_seconds(text: str) -> float:
    """A heartbeat interval: a finite number of seconds, more than 0 and at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {quoted(text)}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_HEARTBEAT):
        raise argparse.ArgumentTypeError(
            f"a heartbeat must be more than 0 and at most {MAX_HEARTBEAT:g} seconds,"
            f" not {quoted(text)}"
        )
    return value


def iterations(text: str) -> int:
    """``--max-iterations``: 1 to MAX_ITERATIONS."""
    return whole_number(text, 1, MAX_ITERATIONS)


def list_limit(text: str) -> int:
    """``list --limit``: 1 or more (leave it out to list every run)."""
    return whole_number(text, 1, MAX_LIST_LIMIT)


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {quoted(text)}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is from 1 to 65535, not {quoted(text)}")
    return value


#: What ``--max-tokens none`` / ``--max-cost none`` give: lift that limit (resume).
NO_LIMIT = 0


def max_tokens(text: str) -> int:
    """``--max-tokens``: a whole number of tokens from 1, or ``none`` (NO_LIMIT: no limit)."""
    if text.strip().lower() == "none":
        return NO_LIMIT
    return whole_number(text, 1, 10**15)


def max_cost(text: str) -> float:
    """``--max-cost``: USD, more than 0, or ``none`` (NO_LIMIT: no limit)."""
    if text.strip().lower() == "none":
        return float(NO_LIMIT)
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an amount of USD: {quoted(text)}") from None
    if not (math.isfinite(value) and 0 < value <= 1e9):
        raise argparse.ArgumentTypeError(
            f"a cost budget is more than 0 USD (or none), not {quoted(text)}"
        )
    return value


def budget_options(parser: argparse.ArgumentParser, *, raising: bool) -> None:
    """``--max-tokens N`` and ``--max-cost USD``; on resume they replace the stored ones."""
    verb = "replace the run's" if raising else "the run's"
    parser.add_argument(
        "--max-tokens",
        type=max_tokens,
        default=None,
        metavar="N",
        help=f"{verb} token budget (in + out over its task bodies; 'none': no limit); a run"
        " that reaches it pauses (exit 6)",
    )
    parser.add_argument(
        "--max-cost",
        type=max_cost,
        default=None,
        metavar="USD",
        help=f"{verb} cost budget in USD ('none': no limit); an unknown price counts as"
        " reaching it",
    )


def budget_args(args: argparse.Namespace) -> list[str]:
    """The budget options as given, for a detached worker's command line."""
    out: list[str] = []
    if args.max_tokens is not None:
        out += ["--max-tokens", "none" if args.max_tokens == NO_LIMIT else str(args.max_tokens)]
    if args.max_cost is not None:
        out += ["--max-cost", "none" if args.max_cost == NO_LIMIT else repr(args.max_cost)]
    return out


def new_budget(args: argparse.Namespace, run: RunState) -> Budget | None:
    """The budget ``resume`` sets: the stored one with what the options replace; None when
    no budget option was given (the stored one stays)."""
    if args.max_tokens is None and args.max_cost is None:
        return None
    tokens, cost = run.max_tokens, run.max_cost_usd
    if args.max_tokens is not None:
        tokens = None if args.max_tokens == NO_LIMIT else args.max_tokens
    if args.max_cost is not None:
        cost = None if args.max_cost == NO_LIMIT else args.max_cost
    return Budget(tokens, cost)
