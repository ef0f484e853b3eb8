"""The models a replay answers with: pydantic-ai FunctionModels that give back what a run
recorded, spending no tokens (see nanoagent_core/replay.py).

Needs the optional extra ``llm``. The executor's calls get the recorded model responses of
the task's journaled attempts, one attempt per call in the order they ran, one response per
request; the planner's and reflector's calls likewise get their journaled conversations
(the plan; the n-th reflection the n-th journaled one). A run recorded before those were
journaled gets their recorded outcome (the planned tasks, each reflection's done / new
tasks / cancelled ids) as the answer of one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from nanoagent_core.agents.pydantic_ai import REPLAY_MODEL
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import Task

__all__ = ["ReplayDivergedError", "ReplaySource", "recorded_responses"]


class ReplayDivergedError(Exception):
    """The replayed agent asked for a model answer the recording does not have."""


def recorded_responses(messages_json: str, where: str) -> list[ModelResponse]:
    """The model's responses in one journaled conversation, in order; ValidationError in one
    line when the journal cannot be read."""
    try:
        messages = ModelMessagesTypeAdapter.validate_json(messages_json)
    except ValueError as exc:
        first = (str(exc).strip().splitlines() or ["not pydantic-ai messages"])[0]
        raise ValidationError(f"{where}: the journal cannot be read: {first}") from None
    return [m for m in messages if isinstance(m, ModelResponse)]


def _unmetered(parts: Sequence[ModelResponsePart]) -> ModelResponse:
    # usage left unmeasured, not estimated: a replay spends nothing
    return ModelResponse(parts=list(parts), usage=RequestUsage(unmeasured_requests=1))


def _answers(responses: Sequence[ModelResponse], where: str) -> FunctionModel:
    """A model whose n-th request of the call gets ``responses[n]``."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        del info
        asked = sum(isinstance(m, ModelResponse) for m in messages)
        if asked >= len(responses):
            raise ReplayDivergedError(
                f"{where}: the agent asked for model response {asked + 1}; "
                f"the recording has {len(responses)}"
            )
        return _unmetered(responses[asked].parts)

    return FunctionModel(answer, model_name=REPLAY_MODEL)


def _output(args: Mapping[str, Any] | None, where: str) -> FunctionModel:
    """A model that answers the call's typed output with ``args`` at once."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if args is None:
            raise ReplayDivergedError(f"{where}: the recording has no answer for this call")
        if any(isinstance(m, ModelResponse) for m in messages):
            raise ReplayDivergedError(f"{where}: the recorded answer was refused")
        if info.output_tools:
            return _unmetered([ToolCallPart(info.output_tools[0].name, dict(args))])
        import json

        return _unmetered([TextPart(json.dumps(dict(args)))])

    return FunctionModel(answer, model_name=REPLAY_MODEL)


class ReplaySource:
    """The :class:`~nanoagent_core.agents.pydantic_ai.ModelSource` of one replay."""

    def __init__(
        self,
        *,
        plan: Sequence[str] | None,
        reflections: Sequence[Mapping[str, Any]],
        attempts: Mapping[str, Sequence[tuple[int, str]]],
        plan_messages: str | None = None,
        reflection_messages: Sequence[str] | None = None,
    ) -> None:
        self._plan = None if plan is None else list(plan)
        self._reflections = list(reflections)
        # read now, as the attempts: a journal that cannot be read is refused up front
        self._planned = None
        if plan_messages is not None:
            self._planned = recorded_responses(plan_messages, "the plan")
        self._reflected_responses = None
        if reflection_messages is not None:
            self._reflected_responses = [
                recorded_responses(text, f"reflection {n}")
                for n, text in enumerate(reflection_messages, 1)
            ]
        # read now: a journal that cannot be read is refused before anything runs
        self._attempts = {
            task_id: [
                recorded_responses(text, f"task {task_id} attempt {number}")
                for number, text in entries
            ]
            for task_id, entries in attempts.items()
        }
        self._reflected = 0
        self._executed: dict[str, int] = {}
        self.adopted: set[str] = set()

    def adopt(self, role: str) -> None:
        self.adopted.add(role)

    def model_for(self, role: str, task: Task | None) -> Model:
        if role == "planner":
            if self._planned is not None:
                return _answers(self._planned, "the plan")
            return _output(None if self._plan is None else {"tasks": self._plan}, "the plan")
        if role == "reflector":
            n = self._reflected
            self._reflected += 1
            if self._reflected_responses is not None:
                journaled = self._reflected_responses
                return _answers(journaled[n] if n < len(journaled) else [], f"reflection {n + 1}")
            args = self._reflections[n] if n < len(self._reflections) else None
            return _output(args, f"reflection {n + 1}")
        if task is None:
            raise ReplayDivergedError(f"the {role} called without a task")
        n = self._executed.get(task.id, 0)
        self._executed[task.id] = n + 1
        entries = self._attempts.get(task.id, [])
        where = f"task {task.id} execution {n + 1}"
        if n >= len(entries):
            return _answers([], where)
        return _answers(entries[n], where)
