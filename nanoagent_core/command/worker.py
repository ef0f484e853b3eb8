"""``nanoagent worker``: a pool worker, one long-running process driving many runs at once
(see nanoagent_core.pool). It claims queued runs (``run --enqueue``) oldest first and, with
``--recover``, takes up crashed runs. SIGTERM or SIGINT: the steps in flight finish, then
each run is recorded interrupted and queued again for any pool worker; a second one stops
the steps in flight at once. Prints one line when it is ready and one when it stops."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from nanoagent_core import store_rules as rules
from nanoagent_core.command.arguments import heartbeat_seconds, worker_options
from nanoagent_core.command.output import say
from nanoagent_core.logs import configure as configure_logging
from nanoagent_core.options import whole_number
from nanoagent_core.paths import MEMORY, display_location
from nanoagent_core.pool import DEFAULT_CONCURRENCY, DEFAULT_POLL, Pool, PoolOptions
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.procinfo import host_name
from nanoagent_core.stores import open_store

__all__ = ["add_parser", "run"]

NAME = "worker"

#: The most runs one pool worker drives at once.
MAX_CONCURRENCY = 100_000
#: How long the ready line waits for PostgreSQL's LISTEN connection (polling works meanwhile).
LISTEN_WAIT = 10.0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        NAME,
        parents=[common],
        help="a pool worker: drive many queued runs at once in one process",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"runs driven at once (default: {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--recover",
        action="store_true",
        help="also take up crashed runs (lease expired, or a dead pid on this host)",
    )
    parser.add_argument(
        "--restart-budget",
        type=_budget,
        default=rules.DEFAULT_RESTART_BUDGET,
        metavar="N",
        help="with --recover: automatic restarts per run before a crashed run ends failed"
        f" (default: {rules.DEFAULT_RESTART_BUDGET})",
    )
    parser.add_argument(
        "--poll",
        type=heartbeat_seconds,
        default=DEFAULT_POLL,
        metavar="SECONDS",
        help=f"look at the queue this often when idle (default: {DEFAULT_POLL:g}; on"
        " PostgreSQL a notification wakes it at once)",
    )
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="exit once nothing is in flight and the queue is empty",
    )
    worker_options(parser)


def _concurrency(text: str) -> int:
    return whole_number(text, 1, MAX_CONCURRENCY)


def _budget(text: str) -> int:
    return whole_number(text, 0, 1_000_000)


async def run(location: str, args: argparse.Namespace) -> int:
    configure_logging(args.log_level, limit=None)
    options = PoolOptions(
        concurrency=args.concurrency,
        heartbeat=args.heartbeat,
        poll=args.poll,
        recover=args.recover,
        restart_budget=args.restart_budget,
        until_idle=args.until_idle,
    )
    options.check()
    if location == MEMORY:
        say("worker: ':memory:' is this process's alone; nothing else can queue runs for it")
    store = await open_store(
        location, create=True, synchronous="FULL" if args.durable else "NORMAL"
    )
    try:
        pool = Pool(store, options)
        stops = 0

        def on_signal() -> None:
            nonlocal stops
            stops += 1
            if stops == 1:
                pool.drain()
            else:
                pool.halt()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        serving = asyncio.ensure_future(pool.run())
        listening = ""
        if isinstance(store, PostgresStore):
            heard = await store.queue_listening(LISTEN_WAIT)
            listening = ", listening for queued runs" if heard else ", polling (no LISTEN yet)"
        recovering = ", recovering crashed runs" if options.recover else ""
        say(
            f"worker pid {pool.owner.pid} on {host_name()} ready: {display_location(location)},"
            f" concurrency {options.concurrency}{recovering}{listening}"
        )
        stats = await serving
        say(f"worker pid {pool.owner.pid} stopped: {stats.line()}")
        return 1 if stats.errors else 0
    finally:
        await store.close()
