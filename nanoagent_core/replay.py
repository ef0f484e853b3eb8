"""Offline replay: run a recorded run's goal again (same agent, same options) on models that
answer from its recording, spending no tokens, and say whether the outcome is the same.

For debugging an agent after a code change: every model response comes from the
conversation journal, and your code (prompts, tools, output handling, the loop) runs again
on them. The executor's: one journaled attempt per execution of a task, one response per
request, in order. The planner's and reflector's: the call whose outcome the run used at
that iteration (or, where none was, its last call: the one that failed the run), the
plan first, then the reflections in iteration order. A run recorded before planner and
reflector calls were journaled (schema version 7) gets their recorded outcome instead (the
planned tasks from the ``planned`` event and the tasks table; each reflection's done, gaps,
added tasks and cancelled ids from its ``reflected`` event).

The replay is a new run in the same database (its first event after ``run_created`` is a
note ``replay_of``). Only runs of agents built by ``make_agent`` (``llm`` and your own) that
have a journal can be replayed; the process cannot reach a real model while it replays
(pydantic-ai's ``ALLOW_MODEL_REQUESTS`` is off).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from nanoagent_core.actions import new_run
from nanoagent_core.clip import clip
from nanoagent_core.defaults import DEFAULT_HEARTBEAT
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import Event, EventKind, ModelCall, RunState, Task
from nanoagent_core.protocols import EventStore, JournalStore, NewEvent, SnapshotStore, Step
from nanoagent_core.safetext import visible
from nanoagent_core.status import check_readable
from nanoagent_core.worker import WorkerStore, resume_run

__all__ = [
    "EXIT_DIFFERENT",
    "Outcome",
    "Recording",
    "ReplayReport",
    "ReplayStore",
    "differences",
    "outcome_of",
    "read_recording",
    "replay_run",
]

#: Exit status of ``nanoagent replay`` when the replay's outcome differs from the recording.
EXIT_DIFFERENT = 7

_ROLES = frozenset({"planner", "executor", "reflector"})
_SHOWN = 60  # characters of a differing text shown in a difference line


class ReplayStore(WorkerStore, SnapshotStore, JournalStore, EventStore, Protocol):
    """What a replay needs of a store."""


@dataclass(frozen=True)
class Recording:
    """What a run recorded that a replay answers from."""

    run: RunState
    tasks: tuple[Task, ...]
    results: Mapping[str, str]
    plan: tuple[str, ...] | None  #: the planned task descriptions; None: no plan recorded
    reflections: tuple[dict[str, Any], ...]  #: each reflection's output, in order
    attempts: Mapping[str, tuple[tuple[int, str], ...]]  #: task id -> (attempt, messages)
    #: the plan's journaled conversation (None: not journaled, ``plan`` answers)
    plan_messages: str | None = None
    #: each reflection's journaled conversation (None: not journaled, ``reflections`` answer)
    reflection_messages: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a run came to: what replay compares (attempt counts are left out: a crash and
    resume adds attempts that the journal does not hold)."""

    status: str
    #: (id, description, status, result, error) per task, in insertion order
    tasks: tuple[tuple[str, str, str, str | None, str | None], ...]
    result: str | None


@dataclass(frozen=True)
class ReplayReport:
    run_id: str  #: the replay's run id
    recorded: Outcome
    replayed: Outcome
    differences: tuple[str, ...]

    @property
    def equal(self) -> bool:
        return not self.differences


def outcome_of(run: RunState, tasks: Sequence[Task], results: Mapping[str, str]) -> Outcome:
    rows = tuple(
        (t.id, t.description, t.status.value, results.get(t.id, t.result), t.error) for t in tasks
    )
    return Outcome(run.status.value, rows, run.result)


def _shown(text: str | None, start: int = 0) -> str:
    """``text`` quoted, control characters escaped, from ``start`` (``…`` marks a cut)."""
    if text is None:
        return "none"
    flat = " ".join(text.split())
    head = "…" if start > 0 else ""
    return repr(head + clip(visible(flat[start:]), _SHOWN))


def _pair(was: str | None, now: str | None) -> tuple[str, str]:
    """Both texts shown from a little before where they first differ."""
    if was is None or now is None:
        return _shown(was), _shown(now)
    a, b = " ".join(was.split()), " ".join(now.split())
    same = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    start = max(0, same - 20) if same > _SHOWN - 20 else 0
    return _shown(a, start), _shown(b, start)


def differences(recorded: Outcome, replayed: Outcome) -> list[str]:
    """One line per difference (control characters made visible), recorded side first."""
    lines: list[str] = []
    if recorded.status != replayed.status:
        lines.append(f"status: recorded {recorded.status}, replayed {replayed.status}")
    old = {row[0]: row for row in recorded.tasks}
    new = {row[0]: row for row in replayed.tasks}
    names = ("description", "status", "result", "error")
    for task_id in [*old, *(t for t in new if t not in old)]:
        shown_id = visible(task_id)
        if task_id not in new:
            lines.append(f"task {shown_id}: only recorded ({_shown(old[task_id][1])})")
            continue
        if task_id not in old:
            lines.append(f"task {shown_id}: only replayed ({_shown(new[task_id][1])})")
            continue
        for name, was, now in zip(names, old[task_id][1:], new[task_id][1:], strict=True):
            if was != now:
                old_text, new_text = _pair(was, now)
                lines.append(f"task {shown_id} {name}: recorded {old_text}, replayed {new_text}")
    if recorded.result != replayed.result:
        old_text, new_text = _pair(recorded.result, replayed.result)
        lines.append(f"run result: recorded {old_text}, replayed {new_text}")
    return lines


async def _events(store: EventStore, run_id: str) -> list[Event]:
    events: list[Event] = []
    while True:
        after = events[-1].id if events else 0
        batch = await store.read_events(run_id=run_id, after_id=after, limit=5000)
        events.extend(batch)
        if len(batch) < 5000:
            return events


def _ids(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    ids: list[str] = []
    for item in items:  # pyright: ignore[reportUnknownVariableType]
        if isinstance(item, dict) and isinstance(item.get("id"), str):  # pyright: ignore[reportUnknownMemberType]
            ids.append(item["id"])  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(item, str):
            ids.append(item)
    return ids


async def read_recording(store: ReplayStore, run_id: str) -> Recording:
    """The recording of ``run_id``; ValidationError (one line) when it cannot be replayed."""
    run, tasks, results = await store.get_run_detail(run_id)
    check_readable(run)
    who = f"run {visible(run_id)!r}"
    if not run.status.finished:
        raise ValidationError(f"{who} is {run.status.value}: only a finished run can be replayed")
    journal = [a for a in await store.get_attempts(run_id) if a.messages is not None]
    calls = _answering_calls(await store.get_calls(run_id))
    if not journal and not calls:
        raise ValidationError(
            f"{who} (agent {visible(run.agent)!r}) has no conversation journal: only runs of "
            "pydantic-ai agents (llm, or yours built by make_agent) can be replayed"
        )
    by_id = {t.id: t for t in tasks}
    plan: tuple[str, ...] | None = None
    reflections: list[dict[str, Any]] = []
    for event in await _events(store, run_id):
        data = event.data
        if event.kind == EventKind.PLANNED and plan is None:
            plan = tuple(by_id[i].description for i in _ids(data.get("tasks")) if i in by_id)
        elif event.kind == EventKind.REFLECTED:
            added = [by_id[i].description for i in _ids(data.get("added")) if i in by_id]
            gaps: Any = data.get("gaps")
            gaps = [str(g) for g in cast(list[Any], gaps)] if isinstance(gaps, list) else []
            reflections.append(
                {
                    "done": bool(data.get("done")),
                    "gaps": gaps,
                    "new_tasks": added,
                    "cancel_ids": _ids(data.get("cancelled")) + _ids(data.get("ignored")),
                }
            )
    attempts: dict[str, list[tuple[int, str]]] = {}
    for entry in journal:
        assert entry.messages is not None
        attempts.setdefault(entry.task_id, []).append((entry.attempt, entry.messages))
    planned = [c.messages for c in calls if c.role == "planner" and c.messages is not None]
    reflected = [c.messages for c in calls if c.role == "reflector" and c.messages is not None]
    return Recording(
        run=run,
        tasks=tuple(tasks),
        results=results,
        plan=plan,
        reflections=tuple(reflections),
        attempts={k: tuple(v) for k, v in attempts.items()},
        plan_messages=planned[0] if planned else None,
        reflection_messages=tuple(reflected) if reflected else None,
    )


def _answering_calls(calls: Sequence[ModelCall]) -> list[ModelCall]:
    """Per role and iteration, the call whose outcome the run used ("done"), else the last
    (a call cut short by the budget was asked again; one that failed the run was the end)."""
    chosen: dict[tuple[str, int], ModelCall] = {}
    for call in calls:  # by iteration, role, number
        key = (call.role, call.iteration)
        held = chosen.get(key)
        if held is None or held.outcome != "done":
            chosen[key] = call
    return list(chosen.values())


async def replay_run(
    store: ReplayStore,
    run_id: str,
    new_id: str,
    *,
    options: Mapping[str, str] | None = None,
    heartbeat: float = DEFAULT_HEARTBEAT,
    on_step: Callable[[RunState, Step], None] | None = None,
    handle_signals: bool = True,
) -> ReplayReport:
    """Replay ``run_id`` as the new run ``new_id`` in this process and compare the outcomes.

    ``options`` replace the recorded agent options of the same names (what if the agent ran
    with these?). ValidationError (one line) for a run that cannot be replayed, before
    anything is stored; RunExistsError when ``new_id`` is taken."""
    recording = await read_recording(store, run_id)
    try:
        import pydantic_ai.models as pai_models

        from nanoagent_core.agents.pydantic_ai import answered_by
        from nanoagent_core.agents.replay_model import ReplaySource
    except ImportError as exc:
        from nanoagent_core.agents.llm import MISSING_EXTRA

        raise ValidationError(f"replay: {MISSING_EXTRA} ({exc})") from None
    source = ReplaySource(
        plan=recording.plan,
        reflections=recording.reflections,
        attempts=recording.attempts,
        plan_messages=recording.plan_messages,
        reflection_messages=recording.reflection_messages,
    )
    old = recording.run
    pai_models.ALLOW_MODEL_REQUESTS = False  # from here on, this process reaches no real model
    with answered_by(source):
        run = new_run(
            new_id,
            old.goal,
            agent=old.agent,
            max_iterations=old.max_iterations,
            options={**old.agent_options, **(options or {})},
            heartbeat=heartbeat,
            claimed_here=True,  # this process claims it next
        )
        if not _ROLES.issubset(source.adopted):
            raise ValidationError(
                f"agent {visible(old.agent)!r} is not built by make_agent: replay cannot "
                "answer its model calls"
            )
        await store.create_run(run)
        await store.append_event(new_id, NewEvent(kind=EventKind.NOTE, data={"replay_of": run_id}))
        first_errors: dict[str, str] = {}

        def listen(state: RunState, step: Step) -> None:
            # a task's first failure says why the replay went another way; its last error
            # is often only that the recording had no answer for a retry
            for event in step.events:
                task_id, error = event.data.get("task_id"), event.data.get("error")
                if event.kind == EventKind.TASK_FAILED and isinstance(task_id, str):
                    first_errors.setdefault(task_id, str(error))
            if on_step is not None:
                on_step(state, step)

        final = await resume_run(
            store, new_id, heartbeat=heartbeat, on_step=listen, handle_signals=handle_signals
        )
    _, tasks, results = await store.get_run_detail(new_id)
    recorded = outcome_of(old, recording.tasks, recording.results)
    replayed = outcome_of(final, tasks, results)
    lines = differences(recorded, replayed)
    was = {row[0]: row for row in recorded.tasks}
    for task_id, error in first_errors.items():
        if task_id in was and was[task_id][4] != error and was[task_id][2] == "done":
            lines.append(f"task {visible(task_id)} first failed in the replay: {_shown(error)}")
    return ReplayReport(new_id, recorded, replayed, tuple(lines))
