"""``nanoagent approve RUN [--request ID] [--deny [--reason TEXT]]``: decide the run's
pending approval request, then resume the run in a detached worker that receives the decision.

Exit status: 0 decided (and resumed, when the run was paused); 3 no such run or request;
7 nothing to decide (no pending request, it was decided already or superseded, or several are
pending and none was named); 1 decided but the worker did not start (``resume`` takes the run
up); 2 bad input."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nanoagent_core.actions import check_text
from nanoagent_core.approvals import MAX_WHY_CHARS
from nanoagent_core.command.opening import open_for_run
from nanoagent_core.deciding import decide
from nanoagent_core.errors import ValidationError
from nanoagent_core.models import check_run_id
from nanoagent_core.safetext import visible

__all__ = ["add_parser", "run"]

NAME = "approve"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        NAME,
        parents=[common],
        help="approve (or --deny) a run's pending approval request and resume the run",
    )
    parser.add_argument("run_id")
    parser.add_argument(
        "--request", metavar="ID", help="the request to decide (default: the run's pending one)"
    )
    parser.add_argument("--deny", action="store_true", help="deny instead of approving")
    parser.add_argument("--reason", metavar="TEXT", help="why (given to the executor)")


async def run(location: str, args: argparse.Namespace) -> int:
    run_id = check_run_id(args.run_id)
    reason: str | None = args.reason
    if reason is not None:
        check_text("--reason", reason)
        if len(reason) > MAX_WHY_CHARS:
            raise ValidationError(f"--reason: at most {MAX_WHY_CHARS} characters")
    request_id: str | None = args.request
    if request_id is not None:
        check_text("--request", request_id)
        if not request_id.strip():
            raise ValidationError("--request takes a request id, not an empty string")
    store = await open_for_run(location, run_id)
    try:
        decided = await decide(
            store, location, run_id, approve=not args.deny, request_id=request_id, reason=reason
        )
    finally:
        await store.close()
    request = decided.request
    arguments = json.dumps(request.arguments_value(), ensure_ascii=False, sort_keys=True)
    print(visible(f"{request.id}: {request.what} {arguments}"))
    print(visible(decided.line()))
    return 0
