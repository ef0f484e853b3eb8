"""A detached worker's entry point: ``python -P -m nanoagent_core.worker_main [--heartbeat S]
[--new] [--log-level LEVEL] RUN_ID``, the location in ``NANOAGENT_DB`` (see
nanoagent_core.launch, which starts it).

It is ``nanoagent resume --quiet RUN_ID`` with the claim pipe taken out of the environment:
the command's argument handling, with its errors as one line on stderr (the worker's log) and
its exit codes. This module sits above nanoagent_core.cli; nothing in the core imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nanoagent_core.cli import main as cli_main
from nanoagent_core.launch import take_ready_fd

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    take_ready_fd()
    return cli_main(["resume", "--quiet", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
