"""Where the database lives, and the guard that keeps it inside an allowed directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nanoagent_core.errors import PathNotAllowedError

__all__ = ["MEMORY", "check_allowed", "default_db_path", "resolve_db_location"]

MEMORY = ":memory:"


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/nanoagent/nanoagent.db``, or under ``~/.local/share`` when unset."""
    environ = os.environ if env is None else env
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "nanoagent" / "nanoagent.db"


def check_allowed(location: str, allowed_dir: str | Path | None) -> str:
    """Return ``location`` unless it resolves outside ``allowed_dir``.

    ``:memory:`` always passes."""
    if location == MEMORY or allowed_dir is None:
        return location
    root = Path(allowed_dir).expanduser().resolve()
    target = Path(location).expanduser().resolve()
    if not target.is_relative_to(root):
        raise PathNotAllowedError(
            f"database path {location!r} resolves to {str(target)!r}, outside the allowed "
            f"directory {str(root)!r}"
        )
    return location


def resolve_db_location(explicit: str | None, env: Mapping[str, str] | None = None) -> str:
    """``--db`` if given, else ``NANOAGENT_DB``, else the default path; guarded by
    ``NANOAGENT_ALLOWED_DIR`` when that is set."""
    environ = os.environ if env is None else env
    location = explicit or environ.get("NANOAGENT_DB") or str(default_db_path(environ))
    if location.startswith("postgres://") or location.startswith("postgresql://"):
        return location
    if location != MEMORY:
        location = str(Path(location).expanduser())
    return check_allowed(location, environ.get("NANOAGENT_ALLOWED_DIR") or None)
