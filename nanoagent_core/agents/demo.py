"""The built-in ``demo`` agent: deterministic and offline.

Options (all strings, as given with ``--option KEY=VALUE``):

* ``tasks``: how many tasks the plan has (default 5)
* ``delay``: seconds each task body takes (default 0.3)
* ``followups``: tasks the first reflection adds (default 2)
* ``fail``: comma-separated task numbers whose first attempt fails, e.g. ``2,4``
* ``fail_always``: comma-separated task numbers whose every attempt fails (the run fails)
* ``backoff``: seconds before a failed task's retry, doubling per retry (default 0; at most
  60; see ``Agent.retry_backoff``)
* ``log``: a file to which each body start appends ``key`` (``run_id:task_id:attempt``);
  a plain path, inside ``NANOAGENT_ALLOWED_DIR`` when that is set (checked whenever the agent
  is built, a resume from a database included), created 0600
* ``approve``: comma-separated task numbers that ask a person to approve a harmless action
  (``send_summary`` with a recipient and a subject) before they finish: the run pauses
  (reason ``approval``) until ``nanoagent approve`` or the dashboard decides. Approved, the
  action "runs": with ``log`` set, ``action KEY REQUEST_ID`` is appended to it (before the
  body's ``delay``); denied, the task finishes saying so, with the reason

The same goal and options give the same tasks, results and final result, whether or not the
run was interrupted and resumed.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from nanoagent_core.agents.base import MAX_RETRY_BACKOFF, Agent, ExecutionResult, Reflection
from nanoagent_core.approvals import approval
from nanoagent_core.clip import quoted
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import Task
from nanoagent_core.paths import guard_file

__all__ = ["DemoOptions", "make_demo_agent"]

_NUMBER = re.compile(r"^Step (\d+)\b")
_FOLLOWUP = "follow-up"
_VERBS = ("Survey", "Outline", "Draft", "Check", "Measure", "Compare", "Summarise", "Review")
_WORDS = (
    "alpha", "bravo", "cedar", "delta", "ember", "fjord", "grove", "harbor", "indigo", "juniper",
    "kelp", "lumen", "meadow", "nectar", "orbit", "prism", "quartz", "river", "summit", "tundra",
)  # fmt: skip


class DemoOptions(BaseModel):
    """The demo agent's options, parsed from the run's ``KEY=VALUE`` strings by :meth:`parse`
    (which says what is wrong in the command line's words); the model holds them checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks: int = Field(default=5, ge=1, le=50)
    delay: float = Field(default=0.3, ge=0.0, le=3600.0, allow_inf_nan=False)
    followups: int = Field(default=2, ge=0, le=20)
    fail: frozenset[int] = frozenset()
    log: str | None = None
    fail_always: frozenset[int] = frozenset()
    backoff: float = Field(default=0.0, ge=0.0, le=MAX_RETRY_BACKOFF, allow_inf_nan=False)
    approve: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> DemoOptions:
        known = set(cls.model_fields)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValidationError(
                f"demo agent: unknown option {quoted(unknown[0])}"
                f" (known: {', '.join(sorted(known))})"
            )
        tasks = _int(options, "tasks", 5, 1, 50)
        delay = _float(options, "delay", 0.3, 0.0, 3600.0)
        followups = _int(options, "followups", 2, 0, 20)
        fail = _numbers(options, "fail")
        log = options.get("log") or None
        if log is not None:
            guard_file(log, what="demo agent: log")
        return cls(
            tasks=tasks,
            delay=delay,
            followups=followups,
            fail=fail,
            log=log,
            fail_always=_numbers(options, "fail_always"),
            backoff=_float(options, "backoff", 0.0, 0.0, MAX_RETRY_BACKOFF),
            approve=_numbers(options, "approve"),
        )


def _numbers(options: Mapping[str, str], name: str) -> frozenset[int]:
    """A comma-separated list of task numbers."""
    numbers: set[int] = set()
    for part in options.get(name, "").split(","):
        if part.strip():
            if not part.strip().isdigit() or len(part.strip()) > 6:
                raise ValidationError(f"demo agent: {name} takes task numbers, not {quoted(part)}")
            numbers.add(int(part))
    return frozenset(numbers)


def _int(options: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            f"demo agent: {name} must be a whole number, not {quoted(raw)}"
        ) from None
    if not low <= value <= high:
        raise ValidationError(f"demo agent: {name} must be between {low} and {high}")
    return value


def _float(options: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"demo agent: {name} must be a number, not {quoted(raw)}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ValidationError(f"demo agent: {name} must be between {low:g} and {high:g}")
    return value


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def _number(task: Task) -> int:
    match = _NUMBER.match(task.description)
    return int(match.group(1)) if match else 0


class _DemoPlanner:
    def __init__(self, opts: DemoOptions) -> None:
        self._opts = opts

    async def plan(self, goal: str) -> Sequence[str]:
        subject = " ".join(goal.split())[:60]
        return [
            f"Step {n}: {_VERBS[_digest(goal, str(n))[0] % len(_VERBS)]} {subject}"
            for n in range(1, self._opts.tasks + 1)
        ]


class _DemoExecutor:
    def __init__(self, opts: DemoOptions) -> None:
        self._opts = opts

    def _log(self, line: str) -> None:
        if self._opts.log:
            fd = os.open(self._opts.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(fd, "a", encoding="utf-8") as journal:
                journal.write(line + "\n")

    async def execute(self, task: Task, results: Mapping[str, str], key: str) -> ExecutionResult:
        self._log(key)
        number = _number(task)
        if number in self._opts.approve:
            arguments = {
                "to": "team@example.com",
                "subject": f"Step {number} summary",
                "attachments": [f"step-{number}.md"],
            }
            why = f"step {number} wants to email its summary to the team"
            decision = approval("send_summary", arguments, why)
            if not decision.approved:
                return ExecutionResult(
                    True,
                    f"step {number}: send_summary was denied ({decision.reason or 'no reason'})",
                )
            self._log(f"action {key} {decision.request_id}")
            sent = " (send_summary approved and sent)"
        else:
            sent = ""
        if self._opts.delay:
            await asyncio.sleep(self._opts.delay)
        if number in self._opts.fail_always:
            return ExecutionResult(
                False, f"step {number}: simulated failure on every attempt ({task.attempts})"
            )
        if number in self._opts.fail and task.attempts == 1:
            return ExecutionResult(False, f"step {number}: simulated failure on the first attempt")
        digest = _digest(task.description)
        words = " ".join(_WORDS[b % len(_WORDS)] for b in digest[: 3 + digest[0] % 9])
        return ExecutionResult(True, f"step {number} finished: {words}{sent}")


class _DemoReflector:
    def __init__(self, opts: DemoOptions) -> None:
        self._opts = opts

    async def reflect(self, goal: str, done: Sequence[Task], pending: Sequence[Task]) -> Reflection:
        everything = [*done, *pending]
        if not any(_FOLLOWUP in task.description for task in everything) and self._opts.followups:
            first = self._opts.tasks + 1
            new = [
                f"Step {n}: {_FOLLOWUP} on {' '.join(goal.split())[:40]}"
                for n in range(first, first + self._opts.followups)
            ]
            return Reflection(done=False, gaps=["details need a second pass"], new_tasks=new)
        return Reflection(done=not pending)


def make_demo_agent(options: Mapping[str, str]) -> Agent:
    opts = DemoOptions.parse(options)
    return Agent(
        name="demo",
        planner=_DemoPlanner(opts),
        executor=_DemoExecutor(opts),
        reflector=_DemoReflector(opts),
        options=dict(options),
        retry_backoff=opts.backoff,
    )
