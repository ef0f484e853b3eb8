"""Opening the store of a command that names a run."""

from __future__ import annotations

from nanoagent_core.errors import DatabaseNotFoundError, RunNotFoundError
from nanoagent_core.paths import MEMORY, display_location
from nanoagent_core.stores import AnyStore, open_store

__all__ = ["open_for_run"]


async def open_for_run(location: str, run_id: str, *, read_only: bool = False) -> AnyStore:
    """The store at ``location`` (never created); with no database there, RunNotFoundError
    naming both the run and the location. ``read_only`` does not apply to ``:memory:``."""
    try:
        return await open_store(location, create=False, read_only=read_only and location != MEMORY)
    except DatabaseNotFoundError:
        raise RunNotFoundError(
            f"no run {run_id!r} (no database at {display_location(location)})"
        ) from None
