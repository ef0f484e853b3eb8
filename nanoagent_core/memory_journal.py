"""The memory store's conversation journal: task attempts and planner / reflector calls,
written by a step (:meth:`MemoryJournal._journal_check` before anything changes, then
:meth:`MemoryJournal._journal_write`). Mixed into MemoryStore, whose plumbing these call."""

from __future__ import annotations

from typing import Any

from nanoagent_core import store_rules as rules
from nanoagent_core.models import Attempt, ModelCall, Task
from nanoagent_core.protocols import Step

__all__ = ["MemoryJournal"]

_ROLE_ORDER = {"planner": 0, "reflector": 1}


class MemoryJournal:
    #: run id -> (task id, attempt) -> journal entry, in commit order
    _attempts: dict[str, dict[tuple[str, int], Attempt]]
    #: run id -> the planner's and reflector's calls, in commit order
    _calls: dict[str, list[ModelCall]]
    _tasks: dict[str, dict[str, Task]]

    def _check_open(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def _journal_check(self, run_id: str, step: Step) -> dict[str, Any]:
        """How the step moves the ledger; refuses (before anything is written) a step that
        repeats an attempt or journals one already journaled."""
        ledger = rules.ledger_params(step.attempts, step.calls)
        journal = self._attempts.get(run_id, {})
        for attempt in step.attempts:
            if (attempt.task_id, attempt.attempt) in journal:
                raise rules.duplicate_attempt(run_id, attempt)
        return ledger

    def _journal_write(self, run_id: str, step: Step) -> None:
        if step.attempts:
            journal = self._attempts.setdefault(run_id, {})
            journal.update(((a.task_id, a.attempt), a) for a in step.attempts)
        if step.calls:
            calls = self._calls.setdefault(run_id, [])
            for call in step.calls:
                number = 1 + sum(
                    c.role == call.role and c.iteration == call.iteration for c in calls
                )
                calls.append(call.model_copy(update={"call": number}))

    def _journal_drop(self, run_id: str) -> None:
        self._attempts.pop(run_id, None)
        self._calls.pop(run_id, None)

    # -- JournalStore ----------------------------------------------------------------------

    async def get_attempts(self, run_id: str) -> list[Attempt]:
        self._check_open()
        order = {task.id: task.seq for task in self._tasks.get(run_id, {}).values()}
        entries = self._attempts.get(run_id, {}).values()
        return sorted(entries, key=lambda a: (order.get(a.task_id, 0), a.attempt))

    async def get_calls(self, run_id: str) -> list[ModelCall]:
        self._check_open()
        entries = self._calls.get(run_id, [])
        return sorted(entries, key=lambda c: (c.iteration, _ROLE_ORDER[c.role], c.call))
