"""A COMMIT whose answer is lost while the server crashes and restarts, step by step.

The store learns what became of such a COMMIT by asking the server about the transaction's
id (``pg_xact_status``). After a crash that is not enough: a transaction id none of whose
WAL reached the disk is handed out again after the restart, so "committed" may be the answer
about somebody else's transaction. These tests place a step's COMMIT exactly there:

* the step's last message waits on the lock of the ``counters`` row, held by the test;
* the server is stopped the hard way (``pg_ctl stop -m immediate``) and started again;
* the step did not commit, and its transaction id is taken (and committed) by another
  transaction before the store asks: the store must not take the step for committed
  (it did, and returned the run as it was: the loop then went on without the step, which
  is how a run once completed with one task never done);
* the step did commit (its answer was dropped on the way back): the store must not run it
  again.

Each test starts a private server (as test_pg_restart.py does) with the background writers
quiet (no autovacuum, the WAL writer and checkpoints far apart), so that nothing else writes
the step's WAL to disk before the crash. The event loop is held while the server restarts,
so the store asks only once the test has done what it must.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgkit import new_run, sql_rows, wait_for, with_schema

from nanoagent_core.models import EventKind, Phase, RunState
from nanoagent_core.postgres import PostgresStore
from nanoagent_core.protocols import NewEvent, Step

# a private server's start and crash recovery are slow on a loaded machine
pytestmark = pytest.mark.timeout(300)

SCHEMA = "paths"
#: Quiet background writers: nothing but the test's own sessions writes or flushes WAL.
QUIET = "-c autovacuum=off -c wal_writer_delay=10000 -c checkpoint_timeout=3600"


def _server_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    bindir = Path(found.stdout.strip())
    if found.returncode != 0 or not all((bindir / n).is_file() for n in ("initdb", "pg_ctl")):
        return None
    return bindir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class QuietServer:
    """A throwaway PostgreSQL cluster with quiet background writers."""

    def __init__(self, bindir: Path, root: Path, user: str | None) -> None:
        self._bindir = bindir
        self._data = root / "data"
        self._log = root / "server.log"
        self._root = root
        self._user = user
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self._bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=60,
            user=self._user,
            check=False,
        )
        if done.returncode != 0:
            log = self._log.read_text() if self._log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stderr}{log[-2000:]}")

    def init(self) -> None:
        self._pg("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 {QUIET}"
        self._pg("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-o", options, "-w",
                 "start")  # fmt: skip

    def crash_and_restart(self) -> None:
        self._pg("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        self.start()

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def server() -> Iterator[QuietServer]:
    bindir = _server_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_config --bindir with initdb, pg_ctl)")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run a server as")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="nanoagent-pg-"))
    try:
        if user is not None:
            shutil.chown(root, user)
        quiet = QuietServer(bindir, root, user)
        quiet.init()
        quiet.start()
        try:
            yield quiet
        finally:
            quiet.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class MutingProxy:
    """A TCP relay in front of the server whose connections can be muted: what the server
    sends on them is then dropped (the answer of a COMMIT lost on the way back)."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[Any]] = set()
        self._muted: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def mute(self) -> None:
        """From now on, drop what the server sends on the connections open now."""
        self._muted |= self._relays

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        relays = list(self._relays)
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._relays.add(me)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            self._relays.discard(me)
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, back: bool) -> None:
            try:
                while data := await src.read(65536):
                    if back and me in self._muted:
                        continue
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        except asyncio.CancelledError:
            writer.transport.abort()
            up_writer.transport.abort()
        finally:
            self._relays.discard(me)


@contextlib.asynccontextmanager
async def _store(url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(with_schema(url, SCHEMA), retry_seconds=60.0)
    try:
        yield store
    finally:
        await store.close()


def _step(run: RunState) -> Step:
    """A step that moves the run on and says so in one event."""
    return Step(
        phase=Phase.REFLECTING,
        iteration=run.iteration + 1,
        events=(NewEvent(kind=EventKind.REFLECTED, data={"iteration": run.iteration + 1}),),
    )


def _hold_counters(url: str) -> psycopg.Connection[Any]:
    """A session holding the ``counters`` row lock: every write's last message waits."""
    holder = psycopg.connect(url, connect_timeout=5)
    holder.execute(f'SELECT 1 FROM "{SCHEMA}".counters FOR UPDATE')
    return holder


async def _waiting_xid(url: str) -> int:
    """The (32-bit) transaction id of the session waiting for the counters row lock."""

    async def waiting() -> int | None:
        rows = await asyncio.to_thread(
            sql_rows,
            url,
            "SELECT backend_xid::text FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND backend_xid IS NOT NULL",
        )
        return int(rows[0][0]) if rows else None

    return int(await wait_for(waiting, what="the step's COMMIT to wait for the lock"))


def _take_xid(url: str, xid: int) -> None:
    """Commit transactions that take ids until one has ``xid`` (32-bit): the id is then
    somebody else's committed transaction. Fails if the server had already gone past it."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        for _ in range(1000):
            row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
            assert row is not None
            taken = int(row[0]) % 2**32
            if taken == xid:
                return
            assert taken < xid, (
                f"after the restart the server hands out id {taken}, past {xid}: the step's"
                " WAL reached the disk before the crash, so its id cannot come back"
            )
    raise AssertionError(f"id {xid} never came back")


def _kinds(url: str, run_id: str) -> list[str]:
    rows = sql_rows(
        url, f'SELECT kind FROM "{SCHEMA}".events WHERE run_id = %s ORDER BY id', (run_id,)
    )
    return [str(row[0]) for row in rows]


@pytest.mark.parametrize("reused", [True, False], ids=["id-reused", "id-not-handed-out-yet"])
async def test_a_lost_commit_that_did_not_land_runs_again(
    server: QuietServer, reused: bool
) -> None:
    """The id reused: the server says "committed" (about another transaction). Not yet
    handed out: the server cannot say anything about it yet, but a transaction lost in a
    crash is known not to have committed: the step runs again at once (with nothing else
    writing, the id is never handed out, and waiting to learn more would never end)."""
    async with _store(server.url) as store:
        run = await store.create_run(new_run("reused"))
        holder = _hold_counters(server.url)
        committing = asyncio.ensure_future(store.commit_step("reused", _step(run), epoch=0))
        try:
            xid = await _waiting_xid(server.url)
            # Held loop: the store cannot ask about its transaction before the id is reused.
            server.crash_and_restart()
            if reused:
                _take_xid(server.url, xid)
        finally:
            holder.close()
        after = await committing

    # The step ran again on a new connection: it is there, once, and what was returned is it.
    assert _kinds(server.url, "reused") == ["run_created", "reflected"]
    assert (after.phase, after.iteration) == (Phase.REFLECTING, 1)


async def test_a_lost_commit_that_landed_before_the_crash_is_not_run_again(
    server: QuietServer,
) -> None:
    proxy = MutingProxy(server.port)
    await proxy.start()
    try:
        via_proxy = server.url.replace(f":{server.port}/", f":{proxy.port}/")
        async with _store(via_proxy) as store:
            run = await store.create_run(new_run("landed"))
            holder = _hold_counters(server.url)
            committing = asyncio.ensure_future(store.commit_step("landed", _step(run), epoch=0))
            try:
                await _waiting_xid(server.url)
                proxy.mute()  # the COMMIT's answer will not come back
            finally:
                holder.close()  # the step's COMMIT goes through

            async def landed() -> bool:
                kinds = await asyncio.to_thread(_kinds, server.url, "landed")
                return kinds == ["run_created", "reflected"]

            await wait_for(landed, what="the step to commit")
            server.crash_and_restart()
            after = await committing

        assert _kinds(server.url, "landed") == ["run_created", "reflected"]
        assert (after.phase, after.iteration) == (Phase.REFLECTING, 1)
    finally:
        await proxy.close()
