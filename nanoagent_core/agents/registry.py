"""Finding agents by name: the built-in ``demo`` and ``llm`` and installed entry points.

Only installed entry points in the group ``nanoagent.agents`` are looked up; a name read
from a database is never treated as an import path.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from nanoagent_core.agents.base import Agent, AgentFactory
from nanoagent_core.agents.demo import make_demo_agent
from nanoagent_core.agents.llm import make_llm_agent
from nanoagent_core.agents.options import refuse_secret_options
from nanoagent_core.errors import UnknownAgentError, ValidationError

__all__ = ["ENTRY_POINT_GROUP", "agent_names", "load_agent"]

ENTRY_POINT_GROUP = "nanoagent.agents"
_BUILTIN: dict[str, AgentFactory] = {"demo": make_demo_agent, "llm": make_llm_agent}


def agent_names() -> list[str]:
    installed = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(_BUILTIN) | installed)


def load_agent(name: str, options: Mapping[str, str]) -> Agent:
    """Build the agent ``name`` with ``options``; UnknownAgentError or ValidationError.

    Options named like a secret are refused first, for every agent (see options.py)."""
    refuse_secret_options(options)
    factory = _BUILTIN.get(name)
    if factory is None:
        matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not matches:
            raise UnknownAgentError(
                f"unknown agent {name!r} (available: {', '.join(agent_names())})"
            )
        try:
            factory = matches[0].load()
        except Exception as exc:
            raise UnknownAgentError(f"agent {name!r} failed to load: {exc}") from None
    try:
        agent = factory(dict(options))
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(f"agent {name!r} rejected its options: {exc}") from None
    if not isinstance(agent, Agent):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise UnknownAgentError(f"agent {name!r}: its entry point did not return an Agent")
    return agent
