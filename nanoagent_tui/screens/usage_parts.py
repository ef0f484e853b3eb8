"""What the detail screen shows of the usage and cost ledger (Rich only): the run's totals
in the tasks box's title, a task's own above its result. Costs come from the ledger as
stored: ``unknown`` when no price is known, never a guess."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from nanoagent_core.conversation import Usage, usage_text
from nanoagent_core.models import RunState

__all__ = ["calls_subtitle", "run_usage", "tasks_title", "with_task_usage"]


def run_usage(run: RunState) -> Usage:
    """The run's ledger totals (kept in its row) as a Usage."""
    return Usage(
        requests=run.requests,
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
        cost_usd=run.cost_usd,
        cost_unknown=run.cost_unknown,
    )


def tasks_title(run: RunState) -> str:
    """``tasks``, with the run's totals once it made model requests."""
    if not (run.requests or run.tokens_in or run.tokens_out):
        return "tasks"
    return f"tasks · total {usage_text(run_usage(run))}"


def with_task_usage(result: RenderableType, usage: Usage | None) -> RenderableType:
    """A task's result pane, with what its journaled attempts spent above it; ``enter``
    opens its conversation."""
    if usage is None:
        return result
    line = Text(f"{usage_text(usage)} · enter: conversation", style="bright_black")
    return Group(line, Text(""), result)


def calls_subtitle(usage: Usage | None) -> str:
    """What the plan and reflections spent (part of the run's total), under the tasks box;
    ``p`` opens their conversation. Empty when none is journaled."""
    if usage is None or not usage.attempts:
        return ""
    return f"plan and reflections · {usage_text(usage)} · p: conversation"
