"""``nanoagent show RUN``: one run whole (tasks, journal, events) as lines or ``--json``;
``--follow`` prints its events as they commit until it ends."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nanoagent_core.command.listing import run_summary
from nanoagent_core.command.opening import open_for_run
from nanoagent_core.command.output import EXIT_CODES, EXIT_PIPE, Stdout, say
from nanoagent_core.errors import ValidationError
from nanoagent_core.follow import EXIT_CRASHED, event_line, follow_run
from nanoagent_core.ledger import budget_text, cost_text
from nanoagent_core.models import (
    Attempt,
    Event,
    ModelCall,
    PauseReason,
    Task,
    check_run_id,
    utc_now,
)
from nanoagent_core.paths import worker_log_path
from nanoagent_core.pause import pause_text
from nanoagent_core.safetext import visible
from nanoagent_core.status import ShownStatus, verdict

__all__ = ["add_parser", "run"]

NAME = "show"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(NAME, parents=[common], help="show one run")
    parser.add_argument("run_id")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="print the run's events as they commit until it ends (exit status as for run;"
        " 6 when it crashed)",
    )


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


def _messages_json(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return text  # not JSON (a hand-edited row): given as stored


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    """A journal entry in ``show --json``: the messages as pydantic-ai serialized them
    (``ModelMessagesTypeAdapter.validate_json(json.dumps(entry["messages"]))`` reads them
    back), None for an attempt with no conversation."""
    messages = _messages_json(attempt.messages)
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


def _call_json(call: ModelCall) -> dict[str, Any]:
    """A planner or reflector call in ``show --json`` (``calls``), as a task's journal entry
    with its role, iteration and number at that iteration."""
    return {
        "role": call.role,
        "iteration": call.iteration,
        "call": call.call,
        "outcome": call.outcome,
        "model": call.model,
        "requests": call.requests,
        "tokens_in": call.tokens_in,
        "tokens_out": call.tokens_out,
        "cost_usd": call.cost_usd,
        "seconds": call.seconds,
        "messages": _messages_json(call.messages),
    }


def _event_json(event: Event) -> dict[str, Any]:
    return {"id": event.id, "ts": event.ts.isoformat(), "kind": event.kind, "data": event.data}


async def run(location: str, args: argparse.Namespace) -> int:
    if args.follow:
        return await _follow_show(location, args)
    run_id = check_run_id(args.run_id)
    store = await open_for_run(location, run_id, read_only=True)
    try:
        run, tasks, results = await store.get_run_detail(run_id)
        journal = await store.get_attempts(run_id)
        calls = await store.get_calls(run_id)
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
            # the planner's and reflector's calls, as the tasks' journals (after the rest)
            "calls": [_call_json(call) for call in calls],
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
    if calls:  # the part of it the plan and the reflections spent
        tokens = sum(c.tokens_in + c.tokens_out for c in calls)
        print(f"  of which plan and reflections: {len(calls)} calls, {tokens} tokens")
    if run.max_tokens is not None or run.max_cost_usd is not None:
        print(f"budget: {budget_text(run)}")
    if shown is ShownStatus.PAUSED:
        hint = ""
        if run.pause_reason is PauseReason.BUDGET:
            hint = f"; 'nanoagent resume {run.run_id} --max-tokens N' (or --max-cost) continues it"
        elif run.pause_reason is PauseReason.APPROVAL:
            hint = f"; 'nanoagent approve {run.run_id}' (or --deny) decides and continues it"
        else:
            hint = f"; 'nanoagent resume {run.run_id}' continues it"
        print(visible(f"paused: {pause_text(run.pause_reason, run.pause_detail)}{hint}"))
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
    store = await open_for_run(location, run_id, read_only=True)

    def emit(line: str) -> None:
        say(line)
        if Stdout.closed:
            raise BrokenPipeError

    try:
        end = await follow_run(store, run_id, lambda event: emit(event_line(run_id, event)))
        final = end.run
        if end.crashed:
            where = f"pid {final.owner.pid} on {final.owner.host}" if final.owner else "none"
            emit(visible(f"run {run_id} crashed: its worker ({where}) is gone;"
                        f" 'nanoagent resume {run_id}' takes it up"))  # fmt: skip
            return EXIT_CRASHED
        line = f"run {run_id} {final.status}"
        if final.pause_reason is not None:
            line += f": {pause_text(final.pause_reason, final.pause_detail)}"
        elif final.error:
            line += f": {final.error}"
        emit(visible(line))
        return EXIT_CODES[final.status]
    except BrokenPipeError:
        return EXIT_PIPE
    finally:
        await store.close()
