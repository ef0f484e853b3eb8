"""The built-in ``llm`` agent: planner, executor and reflector are pydantic-ai Agents.

``nanoagent run GOAL --agent llm --option model=openai:gpt-4.1`` takes any pydantic-ai model
string (the provider's SDK installed, its key in the environment); ``--option model=test``
runs offline on pydantic-ai's TestModel. Options: see nanoagent_core/agents/pydantic_ai.py.

This module imports pydantic-ai only when the agent is built, so the core works without the
optional extra ``llm``; without it, building the agent says in one line how to add it.
"""

from __future__ import annotations

from collections.abc import Mapping

from nanoagent_core.agents.base import Agent
from nanoagent_core.agents.options import refuse_secret_options
from nanoagent_core.errors import ValidationError

__all__ = ["INSTRUCTIONS", "MISSING_EXTRA", "make_llm_agent"]

MISSING_EXTRA = (
    "the llm agent needs the optional extra 'llm' (pydantic-ai): "
    "run 'uv sync --extra llm' or pip install 'nanoagent[llm]'"
)

#: The built-in agents' instructions, by role (``--option instructions=...`` adds to them).
INSTRUCTIONS = {
    "planner": (
        "You plan work. Split the user's goal into a short ordered list of concrete, "
        "self-contained tasks; prefer few tasks to many."
    ),
    "executor": (
        "You carry out one task of a larger plan and report what you did or found, briefly "
        "and concretely. If you cannot do it, say why and set success to false."
    ),
    "reflector": (
        "You review progress towards a goal. Say done when the goal is achieved; otherwise "
        "name the gaps, add only the tasks needed to close them, and cancel pending tasks "
        "that are no longer needed."
    ),
}

_ROLE_MODELS = ("planner_model", "executor_model", "reflector_model")


def make_llm_agent(options: Mapping[str, str]) -> Agent:
    refuse_secret_options(options)
    try:
        from pydantic_ai import Agent as PydanticAgent

        from nanoagent_core.agents.pydantic_ai import make_agent
    except ImportError as exc:
        raise ValidationError(f"{MISSING_EXTRA} ({exc})") from None
    if not any(options.get(key, "").strip() for key in ("model", *_ROLE_MODELS)):
        raise ValidationError(
            "llm agent: give a model, e.g. --option model=openai:gpt-4.1 (any pydantic-ai "
            "model string) or --option model=test (offline)"
        )
    roles = {role: PydanticAgent(instructions=text) for role, text in INSTRUCTIONS.items()}
    return make_agent(
        planner=roles["planner"],
        executor=roles["executor"],
        reflector=roles["reflector"],
        options=options,
        name="llm",
    )
