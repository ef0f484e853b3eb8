"""The ledger's totals as a person reads them: for ``list``, ``show`` and (later) the
dashboard's runs screen."""

from __future__ import annotations

from nanoagent_core.models import RunState

__all__ = ["budget_text", "cost_text", "token_count"]


def token_count(tokens: int) -> str:
    """Tokens in at most 6 characters: ``-`` for none, ``950``, ``12.3k``, ``4.5M``."""
    if tokens <= 0:
        return "-"
    if tokens < 10_000:
        return str(tokens)
    if tokens < 1_000_000:
        return f"{tokens / 1000:.1f}k"
    return f"{tokens / 1_000_000:.1f}M"


def cost_text(run: RunState) -> str:
    """The run's cost for a person: ``$0.0123``, ``$0.0123+`` when some attempts' prices
    are unknown, ``unknown`` when none is known, ``-`` when nothing was spent."""
    if run.cost_usd is None:
        return "unknown" if run.cost_unknown else "-"
    return f"${run.cost_usd:.4f}" + ("+" if run.cost_unknown else "")


def budget_text(run: RunState) -> str:
    """The run's budget and what it has spent: ``1,234 of 50,000 tokens; $0.0100 of $1.00``
    (``no limit`` when it has none)."""
    parts: list[str] = []
    if run.max_tokens is not None:
        parts.append(f"{run.tokens_in + run.tokens_out:,} of {run.max_tokens:,} tokens")
    if run.max_cost_usd is not None:
        parts.append(f"{cost_text(run)} of ${run.max_cost_usd:.2f}")
    return "; ".join(parts) or "no limit"
