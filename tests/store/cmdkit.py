"""The ``nanoagent`` command in this process: ``main(argv)``, as the console script calls it,
with what a subprocess would get (exactly the given environment, an empty stdin, its own
stdout and stderr), without a second interpreter's start-up (~0.2 s of CPU, ~0.7 s for an
``llm`` run: pydantic-ai's import). For a test whose claim is what the command prints, its
exit status or what it writes; a claim about the process itself (entry point, signals,
detaching, start-up environment) needs a real subprocess.

A plain module on ``sys.path`` (pytest's ``pythonpath``), so any test directory can import it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

#: one command in this process at a time: it takes stdin/stdout/stderr and the environment
_LOCK = threading.Lock()


@contextlib.contextmanager
def _as_a_process(env: Mapping[str, str], out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    """Exactly ``env`` as the environment, an empty stdin, ``out`` and ``err`` as stdout and
    stderr; everything as it was afterwards, the package logger included (``run``
    configures it: to stderr, not propagated)."""
    logger = logging.getLogger("nanoagent_core")
    saved_logger = (list(logger.handlers), logger.level, logger.propagate)
    saved_env = dict(os.environ)
    saved_stdin = sys.stdin
    os.environ.clear()
    os.environ.update(env)
    sys.stdin = io.StringIO("")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        sys.stdin = saved_stdin
        os.environ.clear()
        os.environ.update(saved_env)
        logger.handlers[:] = saved_logger[0]
        logger.setLevel(saved_logger[1])
        logger.propagate = saved_logger[2]


def run_here(
    main: Callable[[Sequence[str]], int], argv: Sequence[str], env: Mapping[str, str]
) -> tuple[int, str, str]:
    """``main(argv)`` with ``env``: ``(exit status, stdout, stderr)``; argparse's exit (bad
    input, ``--help``) is its exit status. On a thread of its own: no signal handler is
    installed (they belong to the main thread), and async code may call it (it blocks the
    event loop, as a subprocess call would)."""
    faults = sorted(key for key in env if key.startswith("NANOAGENT_FAULT_"))
    if faults:  # a fault injector SIGKILLs the process it runs in: this one, the tests'
        raise ValueError(f"{faults} need a real process (cli), not run_here")
    out, err = io.StringIO(), io.StringIO()
    codes: list[int] = []
    failures: list[BaseException] = []

    def command() -> None:
        try:
            codes.append(main(list(argv)))
        except SystemExit as exc:  # argparse's exit
            codes.append(0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1)
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    with _LOCK, _as_a_process(env, out, err):
        thread = threading.Thread(target=command, name=f"nanoagent {' '.join(argv[:3])}")
        thread.start()
        thread.join()
    if failures:
        raise failures[0]
    return codes[0], out.getvalue(), err.getvalue()
