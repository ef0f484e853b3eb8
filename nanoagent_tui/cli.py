"""The ``nanoagent`` console script: the headless commands of nanoagent_core plus the dashboard."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nanoagent_core.cli import main as core_main

__all__ = ["main"]


def _dashboard(location: str) -> int:
    from nanoagent_tui.app import run_dashboard

    return run_dashboard(location)


def main(argv: Sequence[str] | None = None) -> int:
    return core_main(sys.argv[1:] if argv is None else argv, dashboard=_dashboard)


if __name__ == "__main__":
    sys.exit(main())
