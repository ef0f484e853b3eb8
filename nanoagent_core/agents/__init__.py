"""Pluggable agents: planner, executor and reflector."""

from nanoagent_core.agents.base import (
    Agent,
    AgentFactory,
    ExecutionResult,
    Executor,
    ModelUsage,
    Planner,
    Reflection,
    Reflector,
    Transcript,
)
from nanoagent_core.agents.registry import ENTRY_POINT_GROUP, agent_names, load_agent

__all__ = [
    "ENTRY_POINT_GROUP",
    "Agent",
    "AgentFactory",
    "ExecutionResult",
    "Executor",
    "ModelUsage",
    "Planner",
    "Reflection",
    "Reflector",
    "Transcript",
    "agent_names",
    "load_agent",
]
