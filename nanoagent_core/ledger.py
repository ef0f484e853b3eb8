"""The ledger's totals as a person reads them: for ``list``, ``show`` and (later) the
dashboard's runs screen."""

from __future__ import annotations

from nanoagent_core.agents.base import ExecutionResult, Transcript
from nanoagent_core.models import Attempt, ModelCall, RunState, Task
from nanoagent_core.store_rules import ledger_params

__all__ = [
    "budget_text",
    "call_entry",
    "cost_text",
    "journal_entry",
    "token_count",
    "with_ledger",
]


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


def journal_entry(task: Task, outcome: ExecutionResult, seconds: float) -> tuple[Attempt, ...]:
    """The journal entry of an attempt whose outcome is about to commit (Step fields), or none
    for a body that is not model-backed (no transcript)."""
    transcript = outcome.transcript
    if transcript is None:
        return ()
    usage = transcript.usage
    if outcome.pause is not None:
        verdict = outcome.pause.reason.value  # cut short by a pause: not a failure
    else:
        verdict = "done" if outcome.success else "failed"
    attempt = Attempt(
        task_id=task.id,
        attempt=task.attempts,
        outcome=verdict,
        messages=transcript.messages_json,
        model=usage.model,
        requests=usage.requests,
        tokens_in=usage.input_tokens,
        tokens_out=usage.output_tokens,
        cost_usd=usage.cost_usd,
        seconds=seconds,
    )
    return (attempt,)


def call_entry(
    role: str, iteration: int, transcript: Transcript | None, outcome: str, seconds: float
) -> tuple[ModelCall, ...]:
    """The journal entry of a planner or reflector call whose outcome is about to commit
    (``Step.calls``), or none for a part that is not model-backed (no transcript)."""
    if transcript is None:
        return ()
    usage = transcript.usage
    call = ModelCall(
        role="planner" if role == "planner" else "reflector",
        iteration=iteration,
        outcome=outcome,
        messages=transcript.messages_json,
        model=usage.model,
        requests=usage.requests,
        tokens_in=usage.input_tokens,
        tokens_out=usage.output_tokens,
        cost_usd=usage.cost_usd,
        seconds=seconds,
    )
    return (call,)


def with_ledger(
    run: RunState, journal: tuple[Attempt, ...], calls: tuple[ModelCall, ...] = ()
) -> RunState:
    """``run`` with its ledger totals as they will be once ``journal`` (and ``calls``)
    commit."""
    moved = ledger_params(journal, calls)
    cost = run.cost_usd if moved["cost"] is None else (run.cost_usd or 0.0) + moved["cost"]
    return run.model_copy(
        update={
            "tokens_in": run.tokens_in + moved["tokens_in"],
            "tokens_out": run.tokens_out + moved["tokens_out"],
            "cost_usd": cost,
            "cost_unknown": run.cost_unknown + moved["cost_unknown"],
        }
    )
