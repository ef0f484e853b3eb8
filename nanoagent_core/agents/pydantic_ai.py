"""Agents built on pydantic-ai: your planner, executor and reflector as pydantic-ai Agents.

Needs the optional extra ``llm`` (``uv sync --extra llm`` or ``pip install 'nanoagent[llm]'``).
:func:`make_agent` wraps three ``pydantic_ai.Agent`` objects (they may be one and the same,
with your tools and instructions) into a nanoagent :class:`~nanoagent_core.agents.base.Agent`.
Each call gets a typed output (:class:`PlanOutput`, :class:`ExecutionOutput`,
:class:`ReflectionOutput`) passed as the run's ``output_type``, so your Agents need none of
their own (and must have no output validators).

Common options (``--option KEY=VALUE``), see :class:`ModelOptions`: ``model`` (any pydantic-ai
model string, or ``test``), ``planner_model`` / ``executor_model`` / ``reflector_model``,
``instructions`` (added to every call), ``temperature``, ``requests_per_task`` (at most this
many model requests per call, pydantic-ai's ``UsageLimits.request_limit``; default 10).

``model=test`` runs offline on pydantic-ai's ``TestModel``, with outputs made for each call so
that a run goes somewhere sensible: the plan is three tasks named after the goal, each task
succeeds with a short result, the first reflection with nothing pending adds one
"Double-check" task and the next says done. TestModel calls each of your tools once first.
A process that builds an all-``test`` agent sets ``pydantic_ai.models.ALLOW_MODEL_REQUESTS``
to False: from then on it cannot reach a real model.

Provider keys come from the environment only (e.g. ``OPENAI_API_KEY``); options named like a
secret are refused (see options.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import pydantic_ai.models as pai_models
from pydantic import BaseModel, Field
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import (
    DeferredToolRequests,
    ModelSettings,
    RunUsage,
    UsageLimits,
    capture_run_messages,
)
from pydantic_ai.exceptions import CostNotFoundWarning, UsageLimitExceeded
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse
from pydantic_ai.models import Model, infer_model
from pydantic_ai.models.test import TestModel

from nanoagent_core.agents.base import (
    Agent,
    ExecutionResult,
    ModelUsage,
    PartCallError,
    Reflection,
    Transcript,
)
from nanoagent_core.agents.options import refuse_secret_options
from nanoagent_core.agents.pydantic_approvals import Continuation, continuation, need_for
from nanoagent_core.approvals import current_requests
from nanoagent_core.budget import BodyLimits, current_limits
from nanoagent_core.clip import clip
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import PauseReason, Task
from nanoagent_core.pause import Pause
from nanoagent_core.rules import MAX_PLANNED_TASKS

__all__ = [
    "COMMON_OPTIONS",
    "REPLAY_MODEL",
    "ExecutionOutput",
    "ModelOptions",
    "ModelSource",
    "PlanOutput",
    "PlannedTasks",
    "ReflectionOutput",
    "answered_by",
    "make_agent",
]

TEST_MODEL = "test"
ROLES = ("planner", "executor", "reflector")
COMMON_OPTIONS = frozenset(
    {"model", "instructions", "temperature", "requests_per_task", *(f"{r}_model" for r in ROLES)}
)
_CLIP = 600  # characters of one earlier result or task shown in a prompt
_MAX_SHOWN = 40  # earlier results / tasks shown in a prompt

OutputT = TypeVar("OutputT", bound=BaseModel)

# A run's cost budget is passed on as pydantic-ai's ``cost_limit``; where no price is known
# pydantic-ai cannot enforce it and warns on every call. nanoagent handles that case itself
# (an unknown cost counts as the cost budget reached: see nanoagent_core/budget.py).
warnings.filterwarnings("ignore", category=CostNotFoundWarning)

#: The model name of the responses a replay gives (they cost nothing: no tokens are spent).
REPLAY_MODEL = "replay"


class ModelSource(Protocol):
    """Where the calls of agents built under :func:`answered_by` get their model (replay)."""

    def adopt(self, role: str) -> None:
        """A role of an agent built now will ask this source (called once per role)."""
        ...

    def model_for(self, role: str, task: Task | None) -> Model:
        """The model for the next call of ``role`` (``task``: the executor's task)."""
        ...


_SOURCE: ContextVar[ModelSource | None] = ContextVar("nanoagent_model_source", default=None)


@contextmanager
def answered_by(source: ModelSource) -> Generator[None]:
    """Agents built by :func:`make_agent` within this block ask ``source`` for the model of
    every call instead of using their own (none is built, so no SDK or key is needed).
    A process that uses it should also set ``ALLOW_MODEL_REQUESTS`` to False."""
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


class PlanOutput(BaseModel):
    """The planner's answer."""

    tasks: list[str] = Field(
        description="the tasks, in order; each description self-contained and concrete"
    )


class ExecutionOutput(BaseModel):
    """The executor's answer for one task."""

    result: str = Field(description="what was done or found; the reason when it failed")
    success: bool = Field(description="false when the task could not be done")


class ReflectionOutput(BaseModel):
    """The reflector's answer."""

    done: bool = Field(description="true when the goal is achieved")
    gaps: list[str] = Field(default_factory=list[str], description="what is still missing")
    new_tasks: list[str] = Field(
        default_factory=list[str], description="descriptions of tasks to add"
    )
    cancel_ids: list[str] = Field(
        default_factory=list[str], description="ids of pending tasks no longer needed"
    )


class PlannedTasks(list[str]):
    """The planner's task descriptions, with the call's transcript."""

    transcript: Transcript | None = None


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """The common options, parsed. ``models`` maps each role to a model string or None (the
    pydantic-ai Agent's own model)."""

    models: Mapping[str, str | None]
    instructions: str | None = None
    temperature: float | None = None
    requests_per_task: int = 10

    @classmethod
    def parse(
        cls, options: Mapping[str, str], *, who: str, extra: Collection[str] = ()
    ) -> ModelOptions:
        refuse_secret_options(options)
        unknown = sorted(set(options) - COMMON_OPTIONS - set(extra))
        if unknown:
            known = ", ".join(sorted(COMMON_OPTIONS | set(extra)))
            raise ValidationError(f"{who}: unknown option {unknown[0]!r} (known: {known})")
        default = options.get("model", "").strip() or None
        models = {r: options.get(f"{r}_model", "").strip() or default for r in ROLES}
        temperature: float | None = None
        if options.get("temperature", "").strip():
            raw = options["temperature"]
            try:
                temperature = float(raw)
            except ValueError:
                raise ValidationError(f"{who}: temperature must be a number, not {raw!r}") from None
            if not 0.0 <= temperature <= 2.0:
                raise ValidationError(f"{who}: temperature must be between 0 and 2")
        requests = 10
        if options.get("requests_per_task", "").strip():
            raw = options["requests_per_task"]
            if not raw.strip().isdigit() or not 1 <= int(raw) <= 1000:
                raise ValidationError(
                    f"{who}: requests_per_task must be a whole number from 1 to 1000, not {raw!r}"
                )
            requests = int(raw)
        instructions = options.get("instructions", "").strip() or None
        return cls(models, instructions, temperature, requests)


def _resolve_model(name: str, who: str) -> Model:
    """A pydantic-ai Model for ``name``; ValidationError in one line when it cannot be built
    (unknown provider, its SDK not installed, its key not in the environment)."""
    try:
        return infer_model(name)
    except Exception as exc:  # UserError, ImportError, provider errors: all one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValidationError(f"{who}: model {name!r} cannot be used: {first}") from None


def _clip(text: str, limit: int = _CLIP) -> str:
    text = " ".join(text.split())
    return clip(text, limit)


def _subject(goal: str) -> str:
    return _clip(goal, 60)


def _usage_of(messages: Sequence[ModelMessage], usage: RunUsage | None) -> ModelUsage:
    responses = [m for m in messages if isinstance(m, ModelResponse)]
    model = next((r.model_name for r in reversed(responses) if r.model_name), None)
    cost = _cost_of(responses)
    if usage is not None:
        return ModelUsage(usage.requests, usage.input_tokens, usage.output_tokens, model, cost)
    # a call that raised: add up what the responses it got say
    return ModelUsage(
        len(responses),
        sum(r.usage.input_tokens for r in responses),
        sum(r.usage.output_tokens for r in responses),
        model,
        cost,
    )


def _cost_of(responses: Sequence[ModelResponse]) -> float | None:
    """What the responses cost in USD by genai-prices' tables; None (unknown, never a guess)
    when there are none, genai-prices is missing, or any response's model has no price (the
    TestModel's 'test' has none)."""
    if not responses:
        return None
    try:
        from genai_prices import calc_price
    except ImportError:
        return None
    total = 0.0
    for response in responses:
        if response.model_name == REPLAY_MODEL:
            continue  # answered from a journal: nothing was spent
        if not response.model_name:
            return None
        try:
            price = calc_price(
                response.usage, response.model_name, provider_id=response.provider_name
            )
        except (LookupError, ValueError):
            return None
        total += float(price.total_price)
    return total


def _transcript(messages: Sequence[ModelMessage], usage: RunUsage | None) -> Transcript:
    text = ModelMessagesTypeAdapter.dump_json(list(messages)).decode()
    return Transcript(messages_json=text, usage=_usage_of(messages, usage))


class CallFailedError(PartCallError):
    """A model call raised; ``transcript`` holds the conversation up to the error, ``pause``
    is set when the run's budget cut it short."""

    def __init__(self, cause: Exception, transcript: Transcript) -> None:
        self.cause = cause
        pause = None
        if self.budget_cut:
            pause = Pause(PauseReason.BUDGET, "the call was cut short by the budget")
        super().__init__(f"{type(cause).__name__}: {cause}", transcript, pause)
        self.transcript: Transcript = transcript

    @property
    def budget_cut(self) -> bool:
        """Cut short by the run's budget (its token or cost limit), not by a failure (the
        per-call ``requests_per_task`` limit is a failure)."""
        text = str(self.cause)
        return isinstance(self.cause, UsageLimitExceeded) and (
            "total_tokens_limit" in text or "cost_limit" in text
        )


def _usage_limits(requests: int, limits: BodyLimits | None) -> UsageLimits:
    """The call's limits: its requests, and what remains of the run's budget (a body)."""
    if limits is None:
        return UsageLimits(request_limit=requests)
    cost = None if limits.cost_usd is None else Decimal(repr(limits.cost_usd))
    return UsageLimits(request_limit=requests, total_tokens_limit=limits.tokens, cost_limit=cost)


class _Role:
    """One role's pydantic-ai Agent with the run settings every call of it uses."""

    def __init__(
        self,
        agent: PydanticAgent[Any, Any],
        model: str | None,
        opts: ModelOptions,
        who: str,
        role: str,
    ) -> None:
        self._agent = agent
        self._role = role
        self._source = _SOURCE.get()
        self._test = model == TEST_MODEL and self._source is None
        self._model: Model | None = None
        if self._source is not None:
            self._source.adopt(role)
        elif model is not None and not self._test:
            self._model = _resolve_model(model, who)
        elif model is None and isinstance(agent.model, str):
            # the Agent's own model, named: built now, so that a missing SDK or key is refused
            # before the run is stored rather than failing its first call
            self._model = _resolve_model(agent.model, who)
        self._opts = opts
        settings: ModelSettings = {}
        if opts.temperature is not None:
            settings["temperature"] = opts.temperature
        self._settings = settings or None

    async def call(
        self,
        prompt: str,
        output_type: type[OutputT],
        test_args: Callable[[], dict[str, Any]],
        task: Task | None = None,
        limits: BodyLimits | None = None,
    ) -> tuple[OutputT, Transcript]:
        output, transcript = await self._run(prompt, output_type, test_args, task, limits)
        assert isinstance(output, output_type)
        return output, transcript

    async def call_deferring(
        self,
        prompt: str,
        output_type: type[OutputT],
        test_args: Callable[[], dict[str, Any]],
        resumed: Continuation | None,
        task: Task | None = None,
        limits: BodyLimits | None = None,
    ) -> tuple[OutputT | DeferredToolRequests, Transcript]:
        """As :meth:`call`, but a call of a tool that requires approval ends it with
        DeferredToolRequests; ``resumed`` continues a conversation that waited for them."""
        deferring = [output_type, DeferredToolRequests]
        return await self._run(prompt, deferring, test_args, task, limits, resumed)

    async def _run(
        self,
        prompt: str,
        output_type: Any,
        test_args: Callable[[], dict[str, Any]],
        task: Task | None,
        limits: BodyLimits | None,
        resumed: Continuation | None = None,
    ) -> tuple[Any, Transcript]:
        model = self._model
        if self._source is not None:
            model = self._source.model_for(self._role, task)
        elif self._test:  # a TestModel per call, answering what this call should get
            model = TestModel(custom_output_args=test_args())
        with capture_run_messages() as messages:
            try:
                result = await self._agent.run(
                    None if resumed else prompt,
                    output_type=output_type,
                    model=model,
                    instructions=self._opts.instructions,
                    model_settings=self._settings,
                    usage_limits=_usage_limits(self._opts.requests_per_task, limits),
                    message_history=resumed.history if resumed else None,
                    deferred_tool_results=resumed.results if resumed else None,
                )
            except Exception as exc:
                raise CallFailedError(exc, _transcript(messages, None)) from exc
        return result.output, _transcript(result.all_messages(), result.usage)


# -- the three parts ----------------------------------------------------------------------


class _Planner:
    def __init__(self, role: _Role) -> None:
        self._role = role

    async def plan(self, goal: str) -> Sequence[str]:
        prompt = (
            f"Goal: {goal}\n\nSplit this goal into at most {MAX_PLANNED_TASKS} tasks that "
            "together achieve it, in the order to do them. Each task description must make "
            "sense on its own."
        )
        subject = _subject(goal)

        def test_args() -> dict[str, Any]:
            steps = ("Gather what is known about", "Draft a plan for", "Review the plan for")
            return {"tasks": [f"{step} {subject}" for step in steps]}

        output, transcript = await self._role.call(
            prompt, PlanOutput, test_args, limits=current_limits()
        )
        planned = PlannedTasks(output.tasks)
        planned.transcript = transcript
        return planned


class _Executor:
    def __init__(self, role: _Role) -> None:
        self._role = role

    async def execute(self, task: Task, results: Mapping[str, str], key: str) -> ExecutionResult:
        lines = [f"Your task ({task.id}): {task.description}"]
        if results:
            lines.append("\nResults of earlier tasks:")
            shown = list(results.items())[-_MAX_SHOWN:]
            lines += [f"- {task_id}: {_clip(text)}" for task_id, text in shown]
        lines.append("\nDo the task and report the result; success=false if you cannot.")

        def test_args() -> dict[str, Any]:
            done = f"done offline (test model), building on {len(results)} earlier results"
            return {"result": f"{_clip(task.description, 80)}: {done}", "success": True}

        asked = current_requests()
        try:
            resumed = continuation(asked)
            output, transcript = await self._role.call_deferring(
                "\n".join(lines), ExecutionOutput, test_args, resumed, task, current_limits()
            )
        except CallFailedError as exc:
            if exc.budget_cut:  # not a failure: the run pauses, the task runs again later
                pause = Pause(PauseReason.BUDGET, f"task {task.id} cut short by the budget")
                return ExecutionResult(False, str(exc), exc.transcript, pause=pause)
            return ExecutionResult(False, str(exc), exc.transcript)
        if isinstance(output, DeferredToolRequests):
            try:
                raise need_for(output, transcript.messages_json, asked, transcript)
            except ValueError as exc:
                return ExecutionResult(False, str(exc), transcript)
        text = output.result.strip() or ("(no result)" if output.success else "(no reason given)")
        return ExecutionResult(output.success, text, transcript)


class _Reflector:
    def __init__(self, role: _Role) -> None:
        self._role = role

    async def reflect(self, goal: str, done: Sequence[Task], pending: Sequence[Task]) -> Reflection:
        lines = [f"Goal: {goal}", "", "Tasks done:"]
        lines += [
            f"- {t.id}: {_clip(t.description, 200)} -> {_clip(t.result or '')}"
            for t in list(done)[-_MAX_SHOWN:]
        ] or ["(none)"]
        lines += ["", "Tasks pending:"]
        lines += [f"- {t.id}: {_clip(t.description, 200)}" for t in list(pending)[:_MAX_SHOWN]]
        if not pending:
            lines.append("(none)")
        lines.append(
            "\nIs the goal achieved? If not, name the gaps, the new tasks that close them, and "
            "the ids of pending tasks that are no longer needed."
        )
        subject = _subject(goal)

        def test_args() -> dict[str, Any]:
            if pending:
                return {"done": False}
            if not any(t.description.startswith("Double-check") for t in done):
                return {
                    "done": False,
                    "gaps": ["the results have not been checked against the goal"],
                    "new_tasks": [f"Double-check the results for {subject}"],
                }
            return {"done": True}

        output, transcript = await self._role.call(
            "\n".join(lines), ReflectionOutput, test_args, limits=current_limits()
        )
        return Reflection(
            done=output.done,
            gaps=tuple(output.gaps),
            new_tasks=tuple(output.new_tasks),
            cancel_ids=tuple(output.cancel_ids),
            transcript=transcript,
        )


def make_agent(
    *,
    planner: PydanticAgent[Any, Any],
    executor: PydanticAgent[Any, Any],
    reflector: PydanticAgent[Any, Any],
    options: Mapping[str, str] | None = None,
    name: str = "pydantic-ai",
    extra_options: Collection[str] = (),
) -> Agent:
    """A nanoagent Agent whose parts are pydantic-ai Agents (one Agent may play several roles).

    ``options`` are the run's options: the common ones (see :class:`ModelOptions`) are
    applied, the names in ``extra_options`` are left to you, any other is refused
    (ValidationError). A role with neither a ``model`` option nor a model of its own is
    refused too.
    """
    opts = dict(options or {})
    parsed = ModelOptions.parse(opts, who=f"agent {name!r}", extra=extra_options)
    # before a model is built: building one for an unusable name says why in one line
    given = {"planner": planner, "executor": executor, "reflector": reflector}
    for role, agent in given.items():
        if parsed.models[role] is None and agent.model is None:
            raise ValidationError(
                f"agent {name!r}: the {role} has no model; give one with --option model=..."
                f" (or {role}_model=...)"
            )
    if all(parsed.models[role] == TEST_MODEL for role in ROLES):
        # offline by construction: nothing in this process may reach a real model any more
        pai_models.ALLOW_MODEL_REQUESTS = False
    who = f"agent {name!r}"
    roles = {
        role: _Role(agent, parsed.models[role], parsed, who, role) for role, agent in given.items()
    }
    return Agent(
        name=name,
        planner=_Planner(roles["planner"]),
        executor=_Executor(roles["executor"]),
        reflector=_Reflector(roles["reflector"]),
        options=opts,
    )
