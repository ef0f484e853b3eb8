"""Every error nanoagent raises on purpose derives from :class:`NanoagentError`.

Each subclass's docstring is its default message; pass a more specific one when you have it.
The command line prints ``str(error)`` as one line and exits with ``error.exit_code``.
"""

from __future__ import annotations

__all__ = [
    "DamagedRunError",
    "DatabaseBusyError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "LeaseLostError",
    "NanoagentError",
    "NotANanoagentDatabaseError",
    "PathNotAllowedError",
    "RunAbortedError",
    "RunBusyError",
    "RunExistsError",
    "RunFinishedError",
    "RunNotFoundError",
    "SchemaTooNewError",
    "UnknownAgentError",
    "ValidationError",
]


class NanoagentError(Exception):
    """nanoagent failed."""

    #: Exit status the command line uses for this error.
    exit_code: int = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ValidationError(NanoagentError):
    """Invalid input."""

    exit_code = 2


class PathNotAllowedError(NanoagentError):
    """The database path resolves outside the allowed directory."""

    exit_code = 2


class DatabaseError(NanoagentError):
    """The database could not be read or written."""

    exit_code = 2


class DatabaseBusyError(DatabaseError):
    """Another process held the database's write lock past the busy timeout."""


class DatabaseNotFoundError(DatabaseError):
    """No database at that path."""


class NotANanoagentDatabaseError(DatabaseError):
    """The file is not a nanoagent database."""


class SchemaTooNewError(DatabaseError):
    """The database was written by a newer nanoagent; upgrade nanoagent to open it."""


class RunNotFoundError(NanoagentError):
    """No run with that id."""

    exit_code = 3


class RunExistsError(NanoagentError):
    """A run with that id already exists."""

    exit_code = 2


class RunBusyError(NanoagentError):
    """A live worker holds this run."""

    exit_code = 4


class DamagedRunError(NanoagentError):
    """The run's row holds what nanoagent never writes; it is shown, never acted on."""

    exit_code = 2


class RunFinishedError(NanoagentError):
    """The run has already finished."""

    exit_code = 2


class LeaseLostError(NanoagentError):
    """This worker no longer owns the run (another worker claimed it); nothing was written."""

    exit_code = 4


class UnknownAgentError(NanoagentError):
    """No agent with that name."""

    exit_code = 2


class RunAbortedError(BaseException):
    """Raised inside a worker when an abort request cancels the current step.

    Derives from BaseException (like asyncio.CancelledError) so that an agent's
    ``except Exception`` cannot swallow an abort.
    """
