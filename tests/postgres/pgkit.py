"""Helpers of the PostgreSQL tests: the server's URL, per-test schemas, plain SQL, the
``nanoagent`` command in a subprocess (or in this process: ``here``, for a claim about what
it prints, its exit status or what it writes), and a TCP relay (child-process workers:
prockit.py).

A plain module (tests/ is not a package) on ``sys.path`` (pytest's ``pythonpath``), so any
test directory can import it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, LiteralString, cast

import psycopg
import pytest
from cmdkit import run_here

from nanoagent_core.models import RunState, validated
from nanoagent_core.postgres import PostgresStore

#: Set by CI: the tests must run (and fail if the server does not answer).
URL_ENV = "NANOAGENT_TEST_POSTGRES"
#: Tried when the variable is unset; the tests are skipped if nothing answers there.
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> tuple[str, bool]:
    """``(url, required)``."""
    url = os.environ.get(URL_ENV, "").strip()
    return (url, True) if url else (DEFAULT_URL, False)


@functools.cache
def _server_problem(url: str) -> str | None:
    """Why the server at ``url`` cannot be used (asked once per test session), or None."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return " ".join(str(exc).split())[:200]
    return None


def usable_server() -> str:
    """The server's URL (without a schema) for a test that needs it. When no server answers,
    the test is skipped with the reason, or fails if ``NANOAGENT_TEST_POSTGRES`` named one
    (as CI does)."""
    url, required = server_url()
    problem = _server_problem(url)
    if problem is not None:
        if required:
            pytest.fail(f"{URL_ENV}={url} is set but the server does not answer: {problem}")
        pytest.skip(
            f"no PostgreSQL server at {url} ({problem}); set {URL_ENV} to a server's URL to run"
            " these tests"
        )
    return url


def new_schema_name() -> str:
    return f"nanotest_{uuid.uuid4().hex[:12]}"


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def sql_rows(url: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (test SQL, names already quoted) on a fresh autocommit connection;
    its rows (or [])."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(cast(LiteralString, query), params)
        return cur.fetchall() if cur.description is not None else []


def drop_schema(url: str, schema: str) -> None:
    sql_rows(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def terminate_backends(url: str, application_name: str) -> int:
    """pg_terminate_backend every session whose application_name is given; how many."""
    rows = sql_rows(
        url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = %s AND pid <> pg_backend_pid()",
        (application_name,),
    )
    return int(rows[0][0])


async def outcome(store: PostgresStore, run_id: str) -> tuple[Any, ...]:
    """What a run produced: its tasks, results and final result (not who ran it, or when)."""
    run, tasks, results = await store.get_run_detail(run_id)
    return (
        run.status,
        run.result,
        [(t.id, t.description, t.status, t.result, t.priority) for t in tasks],
        results,
    )


def new_run(run_id: str, goal: str = "write a haiku", **fields: Any) -> RunState:
    return validated(RunState, run_id=run_id, goal=goal, max_iterations=10_000, **fields)


def cli(
    args: Sequence[str],
    *,
    host: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """``nanoagent ARGS`` in a subprocess (the console script's module), as host ``host``."""
    return subprocess.run(
        [sys.executable, "-m", "nanoagent_tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(host, env),
        check=False,
    )


def here(
    args: Sequence[str], *, host: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``nanoagent ARGS`` as :func:`cli` runs it, but in this process (cmdkit.run_here: the
    console script's ``main(argv)``, with the environment ``cli`` would give the child)."""
    from nanoagent_tui.cli import main

    code, out, err = run_here(main, args, child_env(host, env))
    return subprocess.CompletedProcess(list(args), code, out, err)


async def ahere(
    args: Sequence[str], *, host: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """:func:`here` from async code: on a thread, so this event loop goes on meanwhile. A
    PostgreSQL store of the test's own holds its transactions across awaits (a reconnect's
    schema check holds the migration lock): a loop blocked by a command waiting on that
    lock waits forever."""
    return await asyncio.to_thread(here, args, host=host, env=env)


def child_env(host: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NANOAGENT_DB", None)
    if host is not None:
        env["NANOAGENT_HOST"] = host
    env.update(extra or {})
    return env


def start_worker(
    location: str, run_id: str, *, host: str, heartbeat: float
) -> subprocess.Popen[str]:
    """``python -m nanoagent_core.worker`` for ``run_id`` as host ``host``; its exit code
    can be waited for (unlike a ``--detach`` worker, which is not our child)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nanoagent_core.worker", "--db", location,
         "--heartbeat", str(heartbeat), run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(host),
    )  # fmt: skip


async def wait_for(
    probe: Callable[[], Any], *, timeout: float = 60.0, every: float = 0.02, what: str = ""
) -> Any:
    """Await ``probe()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        await asyncio.sleep(every)


class Proxy:
    """A TCP relay in front of the server, in this event loop: ``stop()`` cuts every
    connection and refuses new ones (the server seems down), ``start()`` brings it back on
    the same port (the server seems restarted). The real server is never touched."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        relays, self._relays = list(self._relays), set()
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._relays.add(me)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except (OSError, asyncio.CancelledError):
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:
            return  # stopped: the handler ends quietly
        finally:
            self._writers.difference_update((writer, up_writer))
            self._relays.discard(me)
