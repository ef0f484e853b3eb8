"""The ledger's totals as a person reads them: for ``list``, ``show`` and (later) the
dashboard's runs screen."""

from __future__ import annotations

from nanoagent_core.models import RunState

__all__ = ["cost_text", "token_count"]


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
