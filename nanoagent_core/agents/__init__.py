"""Pluggable agents: planner, executor and reflector."""

from nanoagent_core.agents.base import (
    Agent,
    AgentFactory,
    ExecutionResult,
    Executor,
    Planner,
    Reflection,
    Reflector,
)
from nanoagent_core.agents.registry import ENTRY_POINT_GROUP, agent_names, load_agent

__all__ = [
    "ENTRY_POINT_GROUP",
    "Agent",
    "AgentFactory",
    "ExecutionResult",
    "Executor",
    "Planner",
    "Reflection",
    "Reflector",
    "agent_names",
    "load_agent",
]
