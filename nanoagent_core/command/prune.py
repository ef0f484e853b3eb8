"""``nanoagent prune``: delete old finished runs in short batches, then give space back.

Only stored statuses completed, aborted and failed are ever deleted (and only those named);
never a running (live or crashed), interrupted, queued or paused run. Each batch is one
short transaction (see the stores' ``delete_finished_runs``), so workers keep committing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from nanoagent_core.clip import quoted
from nanoagent_core.errors import DatabaseNotFoundError
from nanoagent_core.models import RunStatus
from nanoagent_core.options import whole_number
from nanoagent_core.paths import MEMORY, display_location
from nanoagent_core.postgres import is_postgres_location
from nanoagent_core.protocols import PruneCount
from nanoagent_core.safetext import visible
from nanoagent_core.store_rules import PRUNABLE
from nanoagent_core.stores import open_store

__all__ = ["DEFAULT_BATCH", "add_parser", "duration", "run", "statuses"]

NAME = "prune"

DEFAULT_BATCH = 500
MAX_BATCH = 100_000
MAX_KEEP = 1_000_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])")


def duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"takes a duration such as 90s, 15m, 12h, 30d or 2w, not {quoted(text)}"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def statuses(text: str) -> list[RunStatus]:
    """``completed,aborted,failed`` (any of them)."""
    out: list[RunStatus] = []
    for part in text.split(","):
        name = part.strip()
        if name not in PRUNABLE:
            raise argparse.ArgumentTypeError(
                f"prune deletes finished runs only ({','.join(PRUNABLE)}), not {quoted(name)}"
            )
        if RunStatus(name) not in out:
            out.append(RunStatus(name))
    return out


def _keep(text: str) -> int:
    return whole_number(text, 0, MAX_KEEP)


def _batch(text: str) -> int:
    return whole_number(text, 1, MAX_BATCH)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    prune = sub.add_parser(
        NAME,
        parents=[common],
        help="delete old finished runs (with their tasks, results, events) and free space",
    )
    prune.add_argument(
        "--older-than",
        type=duration,
        default=timedelta(days=30),
        metavar="AGE",
        help="runs that finished more than AGE ago (90s, 15m, 12h, 30d, 2w; default 30d)",
    )
    prune.add_argument(
        "--status",
        type=statuses,
        default=list(PRUNABLE),
        metavar="LIST",
        help="comma-separated stored statuses to delete (default: completed,aborted,failed)",
    )
    prune.add_argument(
        "--keep-last",
        type=_keep,
        default=0,
        metavar="N",
        help="keep the N newest finished runs of those statuses, whatever their age",
    )
    prune.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    prune.add_argument(
        "--vacuum",
        action="store_true",
        help="SQLite without incremental auto_vacuum: rewrite the file (VACUUM) to shrink it;"
        " workers wait while it runs",
    )
    prune.add_argument(
        "--batch", type=_batch, default=DEFAULT_BATCH, metavar="N", help=argparse.SUPPRESS
    )


def _file_bytes(location: str) -> int | None:
    """The SQLite file and its WAL, in bytes (None for other stores)."""
    if location == MEMORY or is_postgres_location(location):
        return None
    total = 0
    for path in (Path(location), Path(f"{location}-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(path).st_size
    return total


def _what(count: PruneCount) -> str:
    return f"{count.runs:,} runs ({count.tasks:,} tasks, {count.events:,} events)"


async def run(location: str, args: argparse.Namespace) -> int:
    chosen: list[RunStatus] = args.status
    try:
        store = await open_store(location, create=False)
    except DatabaseNotFoundError:
        print(f"nothing to prune: no database at {visible(display_location(location))}")
        return 0
    try:
        criteria: dict[str, Any] = {
            "statuses": chosen,
            "older_than": args.older_than,
            "keep_last": args.keep_last,
        }
        if args.dry_run:
            count = await store.count_finished_runs(**criteria)
            print(f"would prune {_what(count)}; nothing deleted (dry run)")
            return 0
        before = _file_bytes(store.location)
        total = PruneCount()
        batches = 0
        while True:
            batch = await store.delete_finished_runs(**criteria, limit=args.batch)
            if batch.candidates == 0:
                break
            total += batch
            batches += 1
        skipped = total.candidates - total.runs
        line = f"pruned {_what(total)} in {batches:,} batches of at most {args.batch:,}"
        if skipped:
            line += f"; {skipped:,} taken up by a worker meanwhile were kept"
        print(line)
        print(f"space: {visible(await store.reclaim_space(vacuum=args.vacuum))}")
        after = _file_bytes(store.location)
        if before is not None and after is not None:
            print(f"file: {before:,} bytes before, {after:,} after (database and WAL)")
        return 0
    finally:
        await store.close()
