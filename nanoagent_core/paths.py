"""Where the database lives, the guard that keeps it (and any file an agent option names)
inside an allowed directory, and how a location is shown (never with a password)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from nanoagent_core.defaults import ALLOWED_DIR_VAR, DB_VAR
from nanoagent_core.errors import PathNotAllowedError, ValidationError

__all__ = [
    "ALLOWED_DIR_VAR",
    "MEMORY",
    "check_allowed",
    "check_postgres_location",
    "default_db_path",
    "display_location",
    "guard_file",
    "is_postgres_url",
    "resolve_db_location",
    "worker_log_path",
]

MEMORY = ":memory:"

_SECRET_KEYS = re.compile(r"(?i)([?&](?:ssl)?password=)[^&#]*")


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgres://", "postgresql://"))


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/nanoagent/nanoagent.db``, or under ``~/.local/share`` when unset."""
    environ = os.environ if env is None else env
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "nanoagent" / "nanoagent.db"


def display_location(location: str) -> str:
    """``location`` as it may be shown on a screen, in a log or a message: a PostgreSQL URL
    with its password (in the user part or as ``password=`` / ``sslpassword=`` in the query)
    replaced by ``***``. Never fails, even on a malformed URL."""
    if not is_postgres_url(location):
        return location
    scheme, _, rest = location.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    tail = _SECRET_KEYS.sub(r"\1***", tail)
    return f"{scheme}://{netloc}{tail}"


def check_postgres_location(location: str) -> str:
    """``location`` if it parses as a ``postgresql://`` URL, else ValidationError (exit 2)
    with the address masked."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(location)
        _ = parts.port, parts.hostname  # both raise ValueError on a malformed address
    except ValueError as exc:
        raise ValidationError(
            f"malformed PostgreSQL address {display_location(location)[:200]!r}: {exc}"
        ) from None
    return location


def _plain_path(location: str, what: str) -> None:
    if location[:5].lower() == "file:":
        raise ValidationError(
            f"{what} {location[:200]!r}: 'file:' URIs are not taken; give a plain path"
            " (./file:NAME for a file so named)"
        )


def check_allowed(
    location: str, allowed_dir: str | Path | None, *, what: str = "database path"
) -> str:
    """Return ``location`` unless it is a ``file:`` URI (SQLite would read it as one where
    Python reads a plain path: refused everywhere, so that it has no second meaning) or
    resolves outside ``allowed_dir``. ``:memory:`` always passes."""
    if location == MEMORY:
        return location
    _plain_path(location, what)
    if allowed_dir is None:
        return location
    root = Path(allowed_dir).expanduser().resolve()
    target = Path(location).expanduser().resolve()
    if not target.is_relative_to(root):
        raise PathNotAllowedError(
            f"{what} {location!r} resolves to {str(target)!r}, outside the allowed "
            f"directory {str(root)!r}"
        )
    return location


def guard_file(path: str, *, what: str, env: Mapping[str, str] | None = None) -> str:
    """A file an agent option names: a plain path inside ``NANOAGENT_ALLOWED_DIR`` when that
    is set (the same guard as the database path), as ValidationError (exit 2)."""
    environ = os.environ if env is None else env
    try:
        return check_allowed(path, environ.get(ALLOWED_DIR_VAR) or None, what=what)
    except PathNotAllowedError as exc:
        raise ValidationError(str(exc)) from None


def resolve_db_location(explicit: str | None, env: Mapping[str, str] | None = None) -> str:
    """``--db`` if given, else ``NANOAGENT_DB``, else the default path; a SQLite path is
    guarded by ``NANOAGENT_ALLOWED_DIR`` when that is set, a PostgreSQL URL must parse."""
    environ = os.environ if env is None else env
    location = explicit or environ.get(DB_VAR) or str(default_db_path(environ))
    if is_postgres_url(location):
        return check_postgres_location(location)
    if location != MEMORY:
        _plain_path(location, "database path")
        location = os.path.expanduser(location)  # not Path(): it would drop a leading ./
    return check_allowed(location, environ.get(ALLOWED_DIR_VAR) or None)


def worker_log_path(location: str, run_id: str, env: Mapping[str, str] | None = None) -> Path:
    """Where a detached worker of ``run_id`` writes its stderr: ``<db>.logs/<run_id>.log``
    next to a SQLite file, ``$XDG_DATA_HOME/nanoagent/logs/<run_id>.log`` for PostgreSQL."""
    if is_postgres_url(location) or location == MEMORY:
        return default_db_path(env).parent / "logs" / f"{run_id}.log"
    db = Path(location).expanduser().absolute()
    return db.with_name(db.name + ".logs") / f"{run_id}.log"
