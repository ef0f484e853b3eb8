"""``nanoagent serve``: the dashboard in a browser (through nanoagent_tui, which the command
hands in: the core imports nothing of the dashboard)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from nanoagent_core.command.arguments import port
from nanoagent_core.errors import ValidationError
from nanoagent_core.paths import MEMORY

__all__ = ["Serve", "add_parser", "run"]

NAME = "serve"

#: Serves the dashboard in a browser: (location, host, port, public URL or None) -> exit status.
Serve = Callable[[str, str, int, str | None], int]


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        NAME,
        parents=[common],
        help="the dashboard in a browser (needs nanoagent[serve]; no authentication)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument("--port", type=port, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL browsers use, when it is not http://HOST:PORT (a proxy, or --host 0.0.0.0)",
    )


def run(location: str, args: argparse.Namespace, serve: Serve | None) -> int:
    if location == MEMORY:
        raise ValidationError("serve shows a database that workers share; pass --db PATH")
    if serve is None:
        raise ValidationError("the dashboard is not installed; try 'nanoagent list'")
    return serve(location, args.host, args.port, args.public_url)
