"""The ``nanoagent`` command: run, resume, abort, list, show (and, through nanoagent_tui, the
dashboard and demo). Bad input: one line on stderr, exit 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from nanoagent_core.actions import (
    abort_run,
    check_resumable,
    new_run,
    resume_detached,
    start_detached,
)
from nanoagent_core.clip import clip, quoted
from nanoagent_core.defaults import (
    DEFAULT_HEARTBEAT,
    DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_ITERATIONS,
    LOG_LEVELS,
    WORKER_LOG_LIMIT,
)
from nanoagent_core.errors import (
    DatabaseNotFoundError,
    NanoagentError,
    RunNotFoundError,
    ValidationError,
)
from nanoagent_core.eventtext import describe_event
from nanoagent_core.follow import EXIT_CRASHED, event_line, follow_run
from nanoagent_core.ledger import cost_text, token_count
from nanoagent_core.logs import configure as configure_logging
from nanoagent_core.models import (
    MAX_ITERATIONS,
    Attempt,
    Event,
    RunState,
    RunStatus,
    Task,
    check_run_id,
    utc_now,
)
from nanoagent_core.options import parse_option_pairs, whole_number
from nanoagent_core.paths import (
    MEMORY,
    display_location,
    resolve_db_location,
    worker_log_path,
)
from nanoagent_core.protocols import Step
from nanoagent_core.prune import add_prune_parser, cmd_prune
from nanoagent_core.safetext import visible
from nanoagent_core.status import (
    ShownStatus,
    shown_status,
    stored_statuses,
    verdict,
    verdicts,
)
from nanoagent_core.stores import AnyStore, open_store
from nanoagent_core.worker import resume_run

__all__ = ["EXIT_CODES", "EXIT_PIPE", "MAX_LIST_LIMIT", "main", "run_summary"]

#: Exit status of ``run`` / ``resume`` by the run's final status.
EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.FAILED: 1,
    RunStatus.ABORTED: 5,
    RunStatus.INTERRUPTED: 130,
    RunStatus.RUNNING: 1,
}
EXIT_BUSY = 4
#: Exit status of a command other than ``run`` / ``resume`` whose reader closed stdout (as
#: ``nanoagent list | head -1`` does): 128 + SIGPIPE, what a shell reports for ``ls | head``.
#: ``run`` and ``resume`` keep driving the run to its end and exit by its final status.
EXIT_PIPE = 128 + 13
#: The largest ``list --limit``.
MAX_LIST_LIMIT = 1_000_000_000
#: The longest heartbeat interval ``--heartbeat`` takes, in seconds.
MAX_HEARTBEAT = 3600.0

Dashboard = Callable[[str], int]
#: Serves the dashboard in a browser: (location, host, port, public URL or None) -> exit status.
Serve = Callable[[str, str, int, str | None], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"nanoagent: {message} (see 'nanoagent --help')\n")


def _build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="database path (default: $NANOAGENT_DB, else $XDG_DATA_HOME/nanoagent/nanoagent.db)",
    )
    parser = _Parser(
        prog="nanoagent",
        description="Durable agent runs: plan, execute, reflect; survive crashes; resume.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("tui", parents=[common], help="open the dashboard (the default)")
    demo = sub.add_parser(
        "demo", parents=[common], help="start demo runs (one crashed) and open the dashboard"
    )
    demo.add_argument("--no-dashboard", action="store_true", help="start the runs and exit")

    run = sub.add_parser("run", parents=[common], help="start a run")
    run.add_argument("goal")
    run.add_argument("--agent", default="demo")
    run.add_argument(
        "--max-iterations", type=_iterations, default=DEFAULT_MAX_ITERATIONS, metavar="N"
    )
    run.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="agent option"
    )
    run.add_argument("--run-id", metavar="ID")
    run.add_argument("--detach", action="store_true", help="run in a background worker")
    _worker_options(run)

    resume = sub.add_parser("resume", parents=[common], help="resume a run")
    resume.add_argument("run_id")
    resume.add_argument("--detach", action="store_true", help="resume in a background worker")
    resume.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    resume.add_argument("--new", action="store_true", help=argparse.SUPPRESS)
    _worker_options(resume)

    abort = sub.add_parser("abort", parents=[common], help="abort a run")
    abort.add_argument("run_id")

    listing = sub.add_parser("list", parents=[common], help="list runs, newest activity first")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--status", choices=[s.value for s in ShownStatus])
    listing.add_argument(
        "--limit", type=_limit, default=None, metavar="N", help="at most N runs (default: all)"
    )

    show = sub.add_parser("show", parents=[common], help="show one run")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "--follow",
        action="store_true",
        help="print the run's events as they commit until it ends (exit status as for run;"
        " 6 when it crashed)",
    )
    _serve_parser(sub, common)
    _watch_parser(sub, common)
    add_prune_parser(sub, common)
    return parser


def _serve_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="the dashboard in a browser (needs nanoagent[serve]; no authentication)",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument("--port", type=_port, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL browsers use, when it is not http://HOST:PORT (a proxy, or --host 0.0.0.0)",
    )


def _watch_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    from nanoagent_core.watch import EXEC_TIMEOUT, WATCH_INTERVAL, WATCHABLE, exec_seconds

    watch = sub.add_parser(
        "watch",
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


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {quoted(text)}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is from 1 to 65535, not {quoted(text)}")
    return value


def _serve(location: str, args: argparse.Namespace, serve: Serve | None) -> int:
    if location == MEMORY:
        raise ValidationError("serve shows a database that workers share; pass --db PATH")
    if serve is None:
        raise ValidationError("the dashboard is not installed; try 'nanoagent list'")
    return serve(location, args.host, args.port, args.public_url)


def _worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--heartbeat",
        type=_heartbeat_seconds,
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


def _heartbeat_seconds(text: str) -> float:
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


def _iterations(text: str) -> int:
    return whole_number(text, 1, MAX_ITERATIONS)


def _limit(text: str) -> int:
    """``list --limit``: 1 or more (leave it out to list every run)."""
    return whole_number(text, 1, MAX_LIST_LIMIT)


def main(
    argv: Sequence[str] | None = None,
    *,
    dashboard: Dashboard | None = None,
    serve: Serve | None = None,
) -> int:
    """The command. Bad input: one line on stderr and exit 2; an unexpected error: one line
    and exit 1, never a traceback. A closed stdout: see EXIT_PIPE."""
    args = _build_parser().parse_args(argv)
    _Stdout.closed = False
    if sys.stdout is None:  # pyright: ignore[reportUnnecessaryComparison]
        # started with fd 1 closed: write to /dev/null, which also takes fd 1 so that no
        # database file opened later can land on it
        _Stdout.closed = True
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    try:
        return _main(args, dashboard, serve)
    except NanoagentError as exc:
        print(f"nanoagent: {visible(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _stdout_gone()
        return EXIT_PIPE
    except Exception as exc:  # a bug or an unforeseen failure: one line, no traceback, no locals
        print(f"nanoagent: unexpected error: {_unexpected(exc)}", file=sys.stderr)
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
        return _serve(location, args, serve)
    if command in ("tui", "demo"):
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
    handler = _COMMANDS[command]
    code = asyncio.run(handler(location, args))
    sys.stdout.flush()  # here, so that a closed pipe is seen (not at the interpreter's exit)
    return code


_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def _unexpected(exc: BaseException) -> str:
    """``Type: message`` on one line, clipped, with any ``user:password@`` of an address cut."""
    text = " ".join(_USERINFO.sub("***@", str(exc)).split())
    text = clip(text, 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Stdout:
    closed = False  #: its reader has gone; it points at /dev/null now


def _stdout_gone() -> None:
    """The reader of stdout has gone: point stdout at /dev/null so that nothing written later
    (nor the flush at exit) fails again. The recipe of Python's ``signal`` documentation."""
    _Stdout.closed = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (a test's StringIO): nothing to redirect
        pass


def _say(line: str) -> None:
    """Print one line of ``run`` / ``resume``. Never raises for a closed stdout: the output
    stops and the run goes on to its end."""
    if _Stdout.closed:
        return
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _stdout_gone()


# -- commands ------------------------------------------------------------------------------


async def _open(location: str, *, create: bool) -> AnyStore:
    return await open_store(location, create=create)


def _printer(quiet: bool) -> Callable[[RunState, Step], None]:
    def on_step(run: RunState, step: Step) -> None:
        if quiet:
            return
        stamp = run.updated_at.astimezone().strftime("%H:%M:%S")
        for event in step.events:
            line = describe_event(event.kind, event.data)  # escaped already
            _say(f"{stamp} {visible(run.run_id)} {line}")

    return on_step


def _claim_printer(quiet: bool) -> Callable[[RunState, Step], None]:
    def on_claim(run: RunState, step: Step) -> None:
        if not quiet:
            stamp = run.updated_at.astimezone().strftime("%H:%M:%S")
            _say(
                f"{stamp} {visible(run.run_id)} run_claimed epoch={run.epoch} phase={run.phase}"
                f" iteration={run.iteration}"
            )

    return on_claim


async def _cmd_run(location: str, args: argparse.Namespace) -> int:
    run_id = args.run_id if args.run_id is not None else uuid.uuid4().hex[:12]
    run = new_run(
        run_id,
        args.goal,
        agent=args.agent,
        max_iterations=args.max_iterations,
        options=parse_option_pairs(args.option),
        heartbeat=args.heartbeat,
        claim_grace=None if args.detach else 0.0,  # in the foreground, this process claims it
    )
    store = await _open(location, create=True)
    try:
        if args.detach:
            await start_detached(
                store, location, run, heartbeat=args.heartbeat, log_level=args.log_level
            )
            print(run_id)
            return 0
        await store.create_run(run)
        _say(f"run {run_id} in {display_location(location)}")
        return await _drive(store, run_id, args, quiet=False)
    finally:
        await store.close()


async def _drive(store: AnyStore, run_id: str, args: argparse.Namespace, *, quiet: bool) -> int:
    final = await resume_run(
        store,
        run_id,
        heartbeat=args.heartbeat,
        on_step=_printer(quiet),
        on_claim=_claim_printer(quiet),
    )
    if not quiet:
        line = f"run {run_id} {final.status}"
        if final.error:
            line += f": {visible(final.error)}"
        _say(line)
    return EXIT_CODES[final.status]


async def _cmd_resume(location: str, args: argparse.Namespace) -> int:
    run_id = check_run_id(args.run_id)
    try:
        store = await _open(location, create=False)
    except DatabaseNotFoundError:
        raise RunNotFoundError(
            f"no run {run_id!r} (no database at {display_location(location)})"
        ) from None
    try:
        run = await store.get_run(run_id)
        if args.new and (run.epoch != 0 or run.status is not RunStatus.RUNNING):
            return EXIT_BUSY  # a worker for a new run: someone else took it up already
        if run.status is RunStatus.COMPLETED:
            if not args.quiet:
                print(f"run {run_id} completed already")
            return 0
        check_resumable(run)
        if args.detach:
            await resume_detached(
                store, location, run_id, heartbeat=args.heartbeat, log_level=args.log_level
            )
            print(run_id)
            return 0
        return await _drive(store, run_id, args, quiet=args.quiet)
    finally:
        await store.close()


async def _cmd_abort(location: str, args: argparse.Namespace) -> int:
    run_id = check_run_id(args.run_id)
    try:
        store = await _open(location, create=False)
    except DatabaseNotFoundError:
        raise RunNotFoundError(
            f"no run {run_id!r} (no database at {display_location(location)})"
        ) from None
    try:
        message = await abort_run(store, run_id)
    finally:
        await store.close()
    print(visible(message))
    return 0


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


async def _cmd_list(location: str, args: argparse.Namespace) -> int:
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
    print(f"{'STATUS':<12}{'RUN':<{width}}{'PHASE':<11}{'TASKS':>7}{'ITER':>10}{'TOKENS':>9}"
          "  GOAL")  # fmt: skip
    for (run, shown), run_id in zip(runs, ids, strict=True):
        tasks = f"{run.tasks_done}/{run.tasks_total}"
        iters = f"{run.iteration}/{run.max_iterations}"
        tokens = token_count(run.tokens_in + run.tokens_out)
        goal = visible(" ".join(run.goal.split()))
        print(f"{shown.value:<12}{run_id:<{width}}{run.phase.value:<11}{tasks:>7}{iters:>10}"
              f"{tokens:>9}  {goal[:60]}")  # fmt: skip
    return 0


def _task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "description": task.description,
        "status": task.status.value,
        "priority": task.priority,
        "attempts": task.attempts,
        "result": task.result,
        "error": task.error,
    }


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    """A journal entry in ``show --json``: the messages as pydantic-ai serialized them
    (``ModelMessagesTypeAdapter.validate_json(json.dumps(entry["messages"]))`` reads them
    back), None for an attempt with no conversation."""
    try:
        messages: Any = None if attempt.messages is None else json.loads(attempt.messages)
    except ValueError:
        messages = attempt.messages  # not JSON (a hand-edited row): given as stored
    return {
        "attempt": attempt.attempt,
        "outcome": attempt.outcome,
        "model": attempt.model,
        "requests": attempt.requests,
        "tokens_in": attempt.tokens_in,
        "tokens_out": attempt.tokens_out,
        "cost_usd": attempt.cost_usd,
        "seconds": attempt.seconds,
        "messages": messages,
    }


def _event_json(event: Event) -> dict[str, Any]:
    return {"id": event.id, "ts": event.ts.isoformat(), "kind": event.kind, "data": event.data}


async def _cmd_show(location: str, args: argparse.Namespace) -> int:
    if args.follow:
        return await _follow_show(location, args)
    run_id = check_run_id(args.run_id)
    try:
        store = await open_store(location, create=False, read_only=location != ":memory:")
    except DatabaseNotFoundError:
        raise RunNotFoundError(
            f"no run {run_id!r} (no database at {display_location(location)})"
        ) from None
    try:
        run, tasks, results = await store.get_run_detail(run_id)
        journal = await store.get_attempts(run_id)
        run, shown = await verdict(store, run)
        events: list[Event] = []
        while True:
            batch = await store.read_events(
                run_id=run_id, after_id=events[-1].id if events else 0, limit=5000
            )
            events.extend(batch)
            if len(batch) < 5000:
                break
    finally:
        await store.close()
    if args.json:
        by_task: dict[str, list[dict[str, Any]]] = {}
        for attempt in journal:
            by_task.setdefault(attempt.task_id, []).append(_attempt_json(attempt))
        document = run_summary(run, shown) | {
            "tasks": [_task_json(task) | {"journal": by_task.get(task.id, [])} for task in tasks],
            "results": results,
            "events": [_event_json(event) for event in events],
            "result": run.result,
            "error": run.error,
        }
        json.dump(document, sys.stdout, indent=1)
        print()
        return 0
    summary = run_summary(run, shown)
    if run.damaged:
        print(f"run {visible(run.run_id)}  damaged: {visible(run.damaged)}")
    print(f"run {visible(run.run_id)}  {summary['status']}  {run.phase} iteration {run.iteration}"
          f"/{run.max_iterations}  tasks {run.tasks_done}/{run.tasks_total}")  # fmt: skip
    print(f"goal: {visible(run.goal)}")
    print(f"agent: {visible(run.agent)} {json.dumps(run.agent_options)}")  # json: escaped
    if run.requests or run.tokens_in or run.tokens_out:
        print(f"usage: {run.requests} requests, {run.tokens_in} tokens in,"
              f" {run.tokens_out} out, cost {cost_text(run)}")  # fmt: skip
    if run.owner:
        waits = ""
        if (
            shown in (ShownStatus.RUNNING, ShownStatus.ABORTING)
            and run.lease_expires_at
            and run.heartbeat_at
        ):
            quiet = (utc_now() - run.heartbeat_at).total_seconds()
            if run.lease_expires_at <= utc_now():  # alive, but its heartbeat cannot commit
                waits = f" (waiting: no heartbeat committed for {quiet:.0f} s; database busy?)"
        print(f"worker: pid {run.owner.pid} on {visible(run.owner.host)}{waits}")
    if (log := worker_log_path(location, run.run_id)).exists():
        print(f"worker log: {log}")
    for task in tasks:
        mark = ">" if task.id == run.current_task_id and run.phase.value == "executing" else " "
        print(f"{mark} {task.status.value:<9} {visible(task.id)} p{task.priority} a{task.attempts}"
              f"  {visible(task.description)}")  # fmt: skip
    if run.error:
        print(f"error: {visible(run.error, lines=True)}")
    if run.result:
        print(visible(run.result, lines=True))
    return 0


async def _follow_show(location: str, args: argparse.Namespace) -> int:
    """``show RUN --follow``: the run's events, as ``run`` prints them, until it ends. A reader
    that goes away (``| head``) ends the follow (EXIT_PIPE); the run is not touched."""
    if args.json:
        raise ValidationError("--follow prints lines; use 'show --json' without --follow")
    run_id = check_run_id(args.run_id)
    try:
        store = await open_store(location, create=False, read_only=location != MEMORY)
    except DatabaseNotFoundError:
        raise RunNotFoundError(
            f"no run {run_id!r} (no database at {display_location(location)})"
        ) from None

    def say(line: str) -> None:
        _say(line)
        if _Stdout.closed:
            raise BrokenPipeError

    try:
        end = await follow_run(store, run_id, lambda event: say(event_line(run_id, event)))
        final = end.run
        if end.crashed:
            where = f"pid {final.owner.pid} on {final.owner.host}" if final.owner else "none"
            say(visible(f"run {run_id} crashed: its worker ({where}) is gone;"
                        f" 'nanoagent resume {run_id}' takes it up"))  # fmt: skip
            return EXIT_CRASHED
        line = f"run {run_id} {final.status}"
        if final.error:
            line += f": {final.error}"
        say(visible(line))
        return EXIT_CODES[final.status]
    except BrokenPipeError:
        return EXIT_PIPE
    finally:
        await store.close()


async def _cmd_watch(location: str, args: argparse.Namespace) -> int:
    """``watch``: one line per transition into a watched status, until Ctrl-C or SIGTERM
    (exit 0) or a closed stdout (141)."""
    import shutil
    import signal
    from pathlib import Path

    from nanoagent_core.watch import (
        Cursor,
        Transition,
        Watcher,
        check_location,
        database_key,
        default_state_path,
        parse_statuses,
        run_command,
    )

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
        _say(transition.line())
        if _Stdout.closed:
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


_COMMANDS: dict[str, Callable[[str, argparse.Namespace], Any]] = {
    "run": _cmd_run,
    "resume": _cmd_resume,
    "abort": _cmd_abort,
    "list": _cmd_list,
    "show": _cmd_show,
    "watch": _cmd_watch,
    "prune": cmd_prune,
}
