"""What the commands print and how they exit: exit statuses, a stdout whose reader may go away
(``nanoagent list | head -1``), and the event lines of ``run`` / ``resume``."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

from nanoagent_core.clip import clip
from nanoagent_core.eventtext import describe_event
from nanoagent_core.models import RunState, RunStatus
from nanoagent_core.protocols import Step
from nanoagent_core.safetext import visible

__all__ = [
    "EXIT_BUSY",
    "EXIT_CODES",
    "EXIT_PIPE",
    "Stdout",
    "claim_printer",
    "say",
    "stdout_gone",
    "step_printer",
    "unexpected",
]

#: Exit status of ``run`` / ``resume`` by the run's final status.
EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.FAILED: 1,
    RunStatus.ABORTED: 5,
    RunStatus.INTERRUPTED: 130,
    #: stopped at a checkpoint, waiting (its budget, an approval): ``resume`` continues it. The
    #: same number ``show --follow`` gives a crashed run: stopped, not finished, resumable.
    RunStatus.PAUSED: 6,
    RunStatus.RUNNING: 1,
    RunStatus.QUEUED: 1,
}
EXIT_BUSY = 4
#: Exit status of a command other than ``run`` / ``resume`` whose reader closed stdout (as
#: ``nanoagent list | head -1`` does): 128 + SIGPIPE, what a shell reports for ``ls | head``.
#: ``run`` and ``resume`` keep driving the run to its end and exit by its final status.
EXIT_PIPE = 128 + 13

_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def unexpected(exc: BaseException) -> str:
    """``Type: message`` on one line, clipped, with any ``user:password@`` of an address cut."""
    text = " ".join(_USERINFO.sub("***@", str(exc)).split())
    text = clip(text, 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Stdout:
    closed = False  #: its reader has gone; it points at /dev/null now


def stdout_gone() -> None:
    """The reader of stdout has gone: point stdout at /dev/null so that nothing written later
    (nor the flush at exit) fails again. The recipe of Python's ``signal`` documentation."""
    Stdout.closed = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (a test's StringIO): nothing to redirect
        pass


def say(line: str) -> None:
    """Print one line of ``run`` / ``resume``. Never raises for a closed stdout: the output
    stops and the run goes on to its end."""
    if Stdout.closed:
        return
    try:
        print(line, flush=True)
    except BrokenPipeError:
        stdout_gone()


def step_printer(quiet: bool) -> Callable[[RunState, Step], None]:
    """Prints each committed step's events, one line each (nothing when quiet)."""

    def on_step(run: RunState, step: Step) -> None:
        if quiet:
            return
        stamp = run.updated_at.astimezone().strftime("%H:%M:%S")
        for event in step.events:
            line = describe_event(event.kind, event.data)  # escaped already
            say(f"{stamp} {visible(run.run_id)} {line}")

    return on_step


def claim_printer(quiet: bool) -> Callable[[RunState, Step], None]:
    """Prints the line of a claim (nothing when quiet)."""

    def on_claim(run: RunState, step: Step) -> None:
        if not quiet:
            stamp = run.updated_at.astimezone().strftime("%H:%M:%S")
            say(
                f"{stamp} {visible(run.run_id)} run_claimed epoch={run.epoch} phase={run.phase}"
                f" iteration={run.iteration}"
            )

    return on_claim
