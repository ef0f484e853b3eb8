"""What an agent is: a planner, an executor and a reflector, each one async call."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nanoagent_core.models import Task
from nanoagent_core.pause import Pause

__all__ = [
    "MAX_RETRY_BACKOFF",
    "MAX_RETRY_WAIT",
    "Agent",
    "AgentFactory",
    "ExecutionResult",
    "Executor",
    "ModelUsage",
    "PartCallError",
    "Pause",
    "Planner",
    "Reflection",
    "Reflector",
    "Transcript",
]


#: The largest ``Agent.retry_backoff``, in seconds.
MAX_RETRY_BACKOFF = 60.0
#: The longest wait before a retry, however many attempts failed, in seconds.
MAX_RETRY_WAIT = 300.0


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What one call of a model-backed part spent (pydantic-ai's RunUsage, flattened)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None  #: the model's name as the last response gave it
    #: USD, from genai-prices, where every response's model has a known price; else None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """The conversation of one call of a model-backed part (an executor attempt, a plan, a
    reflection), as the part hands it back with its outcome; the loop journals it (an
    executor attempt's as a models.Attempt, a plan's or reflection's as a models.ModelCall).

    ``messages_json`` is pydantic-ai's own serialization (``ModelMessagesTypeAdapter``), so it
    can be read back into messages without nanoagent knowing their shape. A call cut short by
    an error carries the messages up to the error.
    """

    messages_json: str
    usage: ModelUsage


class PartCallError(Exception):
    """What a model-backed planner or reflector raises when its call does not come to an
    output: ``transcript`` is the conversation up to the error (the loop journals it with
    the step that commits the outcome), ``pause`` is set when the call was cut short by the
    run's budget (the run pauses there instead of failing, as for an executor's
    ``ExecutionResult.pause``)."""

    def __init__(
        self, message: str, transcript: Transcript | None, pause: Pause | None = None
    ) -> None:
        super().__init__(message)
        self.transcript = transcript
        self.pause = pause


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    success: bool
    output: str  #: the result on success, the error message on failure
    transcript: Transcript | None = None  #: set by model-backed executors
    #: Set instead of an outcome: the attempt stopped short and the run pauses (e.g. its
    #: budget ran out mid-body, or it waits for a person's approval). Not a failure: the
    #: attempt is journaled with ``outcome=pause.reason``, the task stays pending and runs
    #: again, under the next attempt number, when the run is resumed. ``success`` and
    #: ``output`` are then ignored (``output`` says why, for the log).
    pause: Pause | None = None


@dataclass(frozen=True, slots=True)
class Reflection:
    done: bool
    gaps: Sequence[str] = ()
    new_tasks: Sequence[str] = ()  #: descriptions; filtered by the suspicious-pattern check
    cancel_ids: Sequence[str] = ()  #: ids of pending tasks no longer relevant
    transcript: Transcript | None = None  #: set by model-backed reflectors (journaled)


class Planner(Protocol):
    async def plan(self, goal: str) -> Sequence[str]:
        """Split the goal into task descriptions (at most 50 are used)."""
        ...


class Executor(Protocol):
    async def execute(self, task: Task, results: Mapping[str, str], key: str) -> ExecutionResult:
        """Run one task body. ``key`` is ``run_id:task_id:attempt``: the same key means the same
        attempt, so side effects keyed on it can be made idempotent. Bodies run at least once:
        an attempt cut short by a crash is retried under the next attempt number."""
        ...


class Reflector(Protocol):
    async def reflect(
        self, goal: str, done: Sequence[Task], pending: Sequence[Task]
    ) -> Reflection: ...


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    planner: Planner
    executor: Executor
    reflector: Reflector
    options: Mapping[str, str] = field(default_factory=dict[str, str])
    #: Seconds to wait before the second attempt of a task whose attempt failed; each further
    #: retry waits twice as long as the one before, at most MAX_RETRY_WAIT. 0: retry at once.
    retry_backoff: float = 0.0

    def __post_init__(self) -> None:
        backoff = self.retry_backoff
        if not (math.isfinite(backoff) and 0 <= backoff <= MAX_RETRY_BACKOFF):
            raise ValueError(
                f"retry_backoff must be from 0 to {MAX_RETRY_BACKOFF:g} seconds, not {backoff!r}"
            )

    def retry_wait(self, failures: int) -> float:
        """Seconds to wait before the next attempt of a task after ``failures`` failed
        attempts in a row: ``retry_backoff * 2 ** (failures - 1)``, at most MAX_RETRY_WAIT."""
        if failures < 1 or not self.retry_backoff:
            return 0.0
        return min(self.retry_backoff * 2.0 ** min(failures - 1, 32), MAX_RETRY_WAIT)


class AgentFactory(Protocol):
    """What an entry point in the group ``nanoagent.agents`` names: options -> Agent.

    It should raise ``nanoagent_core.errors.ValidationError`` for options it does not accept.
    """

    def __call__(self, options: Mapping[str, str]) -> Agent: ...
