"""Runs that need a person (crashed, failed, paused): noticing when a run becomes one, and
finding the next one. No Textual here.

:class:`Transitions` remembers the status word each run was last shown with; a run whose
word becomes one that needs a person is reported once (the dashboard notifies and rings the
bell). What was already so when the dashboard opened is not reported: it is on screen.
The bell is on unless ``NANOAGENT_BELL`` is ``0``/``off``/``no``/``false`` or the dashboard
was started with ``--no-bell``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from nanoagent_core.clip import clip
from nanoagent_core.models import RunState
from nanoagent_core.status import ShownStatus

__all__ = ["BELL_ENV", "NEEDS_PERSON", "Transition", "Transitions", "bell_enabled", "next_needing"]

#: The status words that need a person.
NEEDS_PERSON = frozenset({ShownStatus.CRASHED.value, ShownStatus.FAILED.value, "paused"})
BELL_ENV = "NANOAGENT_BELL"


def bell_enabled(env: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get(BELL_ENV, "").strip().lower()
    return value not in ("0", "off", "no", "false")


@dataclass(frozen=True, slots=True)
class Transition:
    run: RunState
    word: str

    def message(self) -> str:
        run = self.run
        why = ""
        if self.word == "paused":
            reason = getattr(run, "pause_reason", None)
            detail = getattr(run, "pause_detail", None)
            why = f" ({reason})" if reason else ""
            if detail:
                why += f": {detail}"
        elif self.word == ShownStatus.FAILED.value and run.error:
            why = f": {run.error}"
        return clip(f"{run.run_id} {self.word}{why}", 300)


class Transitions:
    """The status words last seen, per run."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._opened_at: datetime | None = None

    def observe(self, shown: Iterable[tuple[RunState, str]], now: datetime) -> list[Transition]:
        """Runs whose word became one that needs a person since the last call (none on the
        first call: that is how the dashboard found them). A run seen for the first time
        counts only if it changed since the first call: the kept runs follow the filter, and
        an old failed run a filter brings in has not just come to need anyone."""
        found: list[Transition] = []
        opened_at = self._opened_at
        for run, word in shown:
            before = self._seen.get(run.run_id)
            self._seen[run.run_id] = word
            if opened_at is None or before == word or word not in NEEDS_PERSON:
                continue
            if before is None and run.updated_at < opened_at:
                continue
            found.append(Transition(run, word))
        if opened_at is None:
            self._opened_at = now
        return found


def next_needing(rows: Sequence[tuple[str, str]], current: str | None) -> str | None:
    """The id of the next row (after ``current``, wrapping around) whose word needs a
    person; None when no row does. ``rows``: (run id, word) in the list's order."""
    if not rows:
        return None
    ids = [run_id for run_id, _ in rows]
    start = ids.index(current) + 1 if current in ids else 0
    for offset in range(len(rows)):
        run_id, word = rows[(start + offset) % len(rows)]
        if word in NEEDS_PERSON and run_id != current:
            return run_id
    return None
