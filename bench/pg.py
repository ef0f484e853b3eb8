"""PostgreSQL for the benchmarks: where the server is, whether it answers, and a throwaway
schema per section (``bench_<hex>_<tag>``, dropped with CASCADE afterwards).

The server is ``--pg URL`` or ``NANOAGENT_BENCH_PG`` (default: a local server, trust auth);
``--pg none`` leaves PostgreSQL out. When no server answers, the PostgreSQL rows of every
section say ``skipped: no server`` instead of failing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from functools import cache
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "DEFAULT_URL",
    "RUN_TAG",
    "SKIPPED",
    "default_url",
    "reachable",
    "server_facts",
    "shown",
    "skip_reason",
    "throwaway_schema",
    "with_schema",
]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SKIPPED = "skipped: no server"
#: One tag per bench process, so that every schema of one run shares it.
RUN_TAG = secrets.token_hex(4)


def default_url() -> str | None:
    """The server the benchmarks use, or None when told to leave PostgreSQL out."""
    url = os.environ.get("NANOAGENT_BENCH_PG", DEFAULT_URL).strip()
    return None if url.lower() in ("", "none", "off") else url


def shown(url: str) -> str:
    """The URL without its password, for the tables."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def with_schema(url: str, schema: str) -> str:
    """``url`` with ``?schema=NAME`` (what ``open_store`` and the workers read)."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@cache
def reachable(url: str) -> str | None:
    """None when the server answers, else why not (one line). Asked once per process."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return " ".join(str(exc).split())[:200] or type(exc).__name__
    return None


def server_facts(url: str | None) -> str:
    """The server's version and durability settings, for the machine's description."""
    if url is None:
        return "left out (--pg none)"
    why = reachable(url)
    if why is not None:
        return f"{SKIPPED} at {shown(url)} ({why})"
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            got = [
                conn.execute(f"SHOW {name}").fetchone()  # pyright: ignore[reportArgumentType]
                for name in ("server_version", "synchronous_commit", "fsync")
            ]
    except Exception as exc:
        return f"{shown(url)} ({type(exc).__name__})"
    version, sync, fsync = (str(row[0]) if row else "?" for row in got)
    return f"{version} at {shown(url)} (synchronous_commit {sync}, fsync {fsync}; same host)"


def skip_reason(url: str | None) -> str | None:
    """None when PostgreSQL can be measured, else the note to put under the table."""
    if url is None:
        return "PostgreSQL left out (--pg none)"
    why = reachable(url)
    return None if why is None else f"PostgreSQL {SKIPPED} at {shown(url)}: {why}"


def _drop(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
    with (
        contextlib.suppress(Exception),
        psycopg.connect(url, connect_timeout=3, autocommit=True) as conn,
    ):
        conn.execute(drop)


@contextlib.contextmanager
def throwaway_schema(url: str, tag: str) -> Iterator[str]:
    """The location (URL with ``?schema=bench_<hex>_<tag>``) of a schema that the first
    store opened on it creates; dropped with everything in it afterwards."""
    schema = f"bench_{RUN_TAG}_{tag}"
    _drop(url, schema)
    try:
        yield with_schema(url, schema)
    finally:
        _drop(url, schema)
