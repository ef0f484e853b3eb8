"""nanoagent's logging: standard :mod:`logging`, one logger per module (``nanoagent_core.*``).

Nothing is configured on import: an application embedding nanoagent sees its records through
its own logging set-up. The command line calls :func:`configure` for ``run`` / ``resume``
(records to stderr at ``--log-level``); a detached worker's stderr is its log file (0600,
next to the database, see :func:`nanoagent_core.paths.worker_log_path`), which
:func:`configure` bounds: the records a worker writes stop at ``WORKER_LOG_LIMIT`` bytes of
file (one line says so), and a log already that big is emptied when the next worker for the
run starts (:mod:`nanoagent_core.launch`).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
from typing import TextIO

from nanoagent_core.clip import clip
from nanoagent_core.defaults import DEFAULT_LOG_LEVEL, LOG_LEVELS
from nanoagent_core.paths import display_location

__all__ = ["BoundedStreamHandler", "configure", "safe_text", "silence"]

ROOT = "nanoagent_core"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_URL = re.compile(r"postgres(?:ql)?://\S+")
#: What a bounded log's last line says once the limit is reached.
LIMIT_NOTE = "log limit reached: further records are dropped\n"


def safe_text(text: object, limit: int = 500) -> str:
    """``text`` for a log record: on one line, control characters escaped, any PostgreSQL
    URL's password hidden, clipped to ``limit`` characters."""
    flat = " ".join(str(text).split())
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)
    return clip(_URL.sub(lambda m: display_location(m.group()), flat), limit)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (as logging's last resort
    does), so that a handler outlives a swapped stderr (a test's capture, a closed stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:  # pyright: ignore[reportIncompatibleVariableOverride]
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # pyright: ignore[reportIncompatibleVariableOverride]
        pass


class BoundedStreamHandler(logging.StreamHandler[TextIO]):
    """Writes records to ``stream`` while the file it writes to stays within ``limit`` bytes;
    the first record that would not fit is replaced by LIMIT_NOTE and later ones are dropped.
    A stream that is not a regular file (a terminal, a pipe) is not bounded."""

    def __init__(self, stream: TextIO, limit: int) -> None:
        super().__init__(stream)
        self.limit = limit
        self.full = False

    def _size(self) -> int | None:
        try:
            self.stream.flush()
            info = os.fstat(self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def emit(self, record: logging.LogRecord) -> None:
        if self.full:
            return
        size = self._size()
        if size is not None:
            line = self.format(record) + self.terminator
            if size + len(line.encode("utf-8", "replace")) + len(LIMIT_NOTE) > self.limit:
                self.full = True
                if size + len(LIMIT_NOTE) <= self.limit:
                    self.stream.write(LIMIT_NOTE)
                    self.flush()
                return
        super().emit(record)


def configure(level: str = DEFAULT_LOG_LEVEL, *, limit: int | None = None) -> None:
    """Send nanoagent's records at ``level`` or above to stderr (bounded to ``limit`` bytes of
    file when given). Called by the command line, never on import."""
    if level.upper() not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if getattr(h, "_nanoagent", False)]:
        logger.removeHandler(old)
    # a worker's stderr is its log file for its whole life; a command's may be swapped
    handler: logging.Handler = (
        _StderrHandler() if limit is None else BoundedStreamHandler(sys.stderr, limit)
    )
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._nanoagent = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def silence() -> None:
    """No record reaches stderr (the dashboard draws on the terminal): a NullHandler on the
    package logger keeps logging's last-resort handler from writing there."""
    logger = logging.getLogger(ROOT)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
