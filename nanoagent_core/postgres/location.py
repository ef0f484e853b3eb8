"""Where a PostgreSQL store is: ``postgresql://`` URLs, the ``?schema=NAME`` parameter, the
URL as shown (password masked), and the driver check (psycopg is an extra)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from nanoagent_core.errors import DatabaseError
from nanoagent_core.paths import check_postgres_location, display_location
from nanoagent_core.postgres import sql

__all__ = ["DEFAULT_SCHEMA", "is_postgres_location", "require_driver", "split_location"]

DEFAULT_SCHEMA = "nanoagent"

INSTALL_HINT = "PostgreSQL support is not installed: pip install 'nanoagent[postgres]'"


def require_driver() -> None:
    """DatabaseError (one line: how to install it) when psycopg is not installed."""
    try:
        import psycopg  # noqa: F401  # pyright: ignore[reportUnusedImport]
        import psycopg_pool  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        raise DatabaseError(INSTALL_HINT) from None


def is_postgres_location(location: str) -> bool:
    return location.startswith(("postgres://", "postgresql://"))


def split_location(location: str) -> tuple[str, str, str]:
    """``(conninfo, schema, shown)`` of a ``postgresql://`` URL: the URL for libpq without
    our own ``schema`` parameter, the schema, and the URL to show (password masked).
    A malformed URL is a ValidationError (exit 2) that shows it masked."""
    parts = urlsplit(check_postgres_location(location))
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not sql.SCHEMA_NAME.fullmatch(schema):
        raise DatabaseError(
            f"schema {schema[:80]!r}: use 1-48 characters of a-z, 0-9 and '_', not starting"
            " with a digit"
        )
    if schemas:
        rest = [(key, value) for key, value in query if key != "schema"]
        conninfo = urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
    else:
        conninfo = location
    return conninfo, schema, display_location(location)
