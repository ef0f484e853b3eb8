"""A run row read the quick way: the common case of :func:`nanoagent_core.rows.run_from_row`.

Every step of the loop reads back the run row its own transaction has just written, so that
row holds exactly what this code writes. :func:`quick_run_from_row` checks each field's type
with plain ``type() is`` tests (no per-field guard closures), caches what repeats from row
to row (the agent options' JSON, the owner), and builds the same RunState; for anything
else (a field of an unexpected type or value, a row of another shape) it returns None and
the careful reader (which flags a damaged field instead of failing) takes over. So the
result never differs from ``rows.run_from_row``; tests/unit/test_run_row_quick.py holds the
two side by side, and fails if a column is added to the row without being added here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from nanoagent_core.models import Owner, PauseReason, Phase, RunState, RunStatus
from nanoagent_core.rows import Row, TimeReader

__all__ = ["quick_run_from_row"]

_PHASES = {phase.value: phase for phase in Phase}
_STATUSES = {status.value: status for status in RunStatus}
_REASONS: dict[object, PauseReason | None] = {None: None, **{r.value: r for r in PauseReason}}
_EPOCH = datetime.fromtimestamp(0, UTC)
#: the agent options' JSON text -> its (checked) value; handed out as copies
_OPTIONS: dict[str, dict[str, str]] = {}
#: (host, pid, pid_started) -> the Owner (frozen, so one object serves every row)
_OWNERS: dict[tuple[str, int, float], Owner] = {}
_CACHE_LIMIT = 512


def _options(raw: object) -> dict[str, str] | None:
    if type(raw) is not str:
        return None
    cached = _OPTIONS.get(raw)
    if cached is None:
        try:
            value: Any = json.loads(raw)
        except ValueError:
            return None
        if type(value) is not dict:
            return None
        items: list[tuple[object, object]] = list(value.items())  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
        if not all(type(k) is str and type(v) is str for k, v in items):
            return None
        if len(_OPTIONS) >= _CACHE_LIMIT:
            _OPTIONS.clear()
        cached = _OPTIONS[raw] = {str(k): str(v) for k, v in items}
    return dict(cached)


def _owner(host: object, pid: object, started: object) -> Owner | None:
    if type(host) is not str or type(pid) is not int:
        raise TypeError("owner")
    key = (host, pid, float(started or 0.0))  # type: ignore[arg-type]
    owner = _OWNERS.get(key)
    if owner is None:
        owner = Owner(host=host, pid=pid, pid_started=key[2])
        if len(_OWNERS) >= _CACHE_LIMIT:
            _OWNERS.clear()
        _OWNERS[key] = owner
    return owner


#: RunState's fields in declaration order, as _build sets them (all of them, every time)
_KEYS = (
    "run_id", "goal", "max_iterations", "agent", "agent_options", "phase", "iteration",
    "current_task_id", "status", "created_at", "updated_at", "finished_at", "owner", "epoch",
    "heartbeat_at", "lease_expires_at", "abort_requested_at", "error", "result",
    "tasks_total", "tasks_done", "requests", "tokens_in", "tokens_out", "cost_usd",
    "cost_unknown", "pause_reason", "pause_detail", "max_tokens", "max_cost_usd", "damaged",
)  # fmt: skip
#: True when what RunState.model_construct does for a full set of fields comes down to
#: setting __dict__ (no aliases, no post-init hook, no extra fields kept): then _build does
#: just that, at a fraction of model_construct's cost (it walks every field's definition).
PLAIN_CONSTRUCT = (
    tuple(RunState.model_fields) == _KEYS
    and RunState.__pydantic_post_init__ is None
    and not RunState.__pydantic_root_model__
    and RunState.model_config.get("extra") != "allow"
    and all(f.alias is None and f.validation_alias is None for f in RunState.model_fields.values())
)
_set = object.__setattr__


def _build(**values: Any) -> RunState:
    """``RunState.model_construct(**values)`` for values of every field, in field order."""
    if not PLAIN_CONSTRUCT:
        return RunState.model_construct(**values)
    run = RunState.__new__(RunState)
    _set(run, "__dict__", values)
    _set(run, "__pydantic_fields_set__", set(_KEYS))
    _set(run, "__pydantic_extra__", None)
    _set(run, "__pydantic_private__", None)
    return run


def quick_run_from_row(row: Row, when: TimeReader) -> RunState | None:
    """The run of a row that holds what this code writes; None: read it the careful way."""
    try:
        (run_id, goal, max_iterations, agent, agent_options, phase, iteration, current_task_id,
         status, created_at, updated_at, finished_at, owner_host, owner_pid, owner_pid_started,
         epoch, heartbeat_at, lease_expires_at, abort_requested_at, error, result,
         tasks_total, tasks_done, requests, tokens_in, tokens_out, cost_usd,
         cost_unknown, pause_reason, pause_detail, max_tokens, max_cost_usd) = row  # fmt: skip
        for text in (run_id, goal, agent):
            if type(text) is not str:
                return None
        for number in (max_iterations, iteration, epoch, tasks_total, tasks_done, requests,
                       tokens_in, tokens_out, cost_unknown):  # fmt: skip
            if type(number) is not int:
                return None
        for optional in (error, result, pause_detail):
            if optional is not None and type(optional) is not str:
                return None
        for money in (cost_usd, max_cost_usd):
            if money is not None and type(money) is not float and type(money) is not int:
                return None
        if max_tokens is not None and type(max_tokens) is not int:
            return None
        options = _options(agent_options)
        if options is None:
            return None
        owner = (
            None
            if owner_host is None or owner_pid is None
            else _owner(owner_host, owner_pid, owner_pid_started)
        )
        created = when(created_at) or _EPOCH
        return _build(
            run_id=run_id,
            goal=goal,
            max_iterations=max_iterations,
            agent=agent,
            agent_options=options,
            phase=_PHASES[phase],
            iteration=iteration,
            current_task_id=current_task_id if isinstance(current_task_id, str) else None,
            status=_STATUSES[status],
            created_at=created,
            updated_at=when(updated_at) or created,
            finished_at=when(finished_at),
            owner=owner,
            epoch=epoch,
            heartbeat_at=when(heartbeat_at),
            lease_expires_at=when(lease_expires_at),
            abort_requested_at=when(abort_requested_at),
            error=error,
            result=result,
            tasks_total=tasks_total,
            tasks_done=tasks_done,
            requests=requests,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=None if cost_usd is None else float(cost_usd),
            cost_unknown=cost_unknown,
            pause_reason=_REASONS[pause_reason],
            pause_detail=pause_detail,
            max_tokens=max_tokens,
            max_cost_usd=None if max_cost_usd is None else float(max_cost_usd),
            damaged=None,
        )
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError, OSError):
        return None
