"""The ``nanoagent`` console script: the headless commands of nanoagent_core plus the dashboard."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nanoagent_core.cli import main as core_main
from nanoagent_core.logs import silence as silence_logging

__all__ = ["main"]


def _dashboard(location: str) -> int:
    from nanoagent_tui.app import run_dashboard

    silence_logging()  # the dashboard draws on the terminal: no record may reach stderr
    return run_dashboard(location)


def _serve(location: str, host: str, port: int, public_url: str | None) -> int:
    from nanoagent_tui.serve import serve_dashboard

    return serve_dashboard(location, host, port, public_url)


def main(argv: Sequence[str] | None = None) -> int:
    return core_main(sys.argv[1:] if argv is None else argv, dashboard=_dashboard, serve=_serve)


if __name__ == "__main__":
    sys.exit(main())
