"""``nanoagent serve``: the dashboard in a real headless browser, over loopback only.

``nanoagent serve`` runs as a real subprocess on a free port of 127.0.0.1. Debian's
``chromium`` loads the page headless; the test drives it through the Chrome DevTools
protocol (a websocket to the browser, aiohttp's client) and reads what the page's own
websocket received from the served dashboard: the seeded runs' ids must arrive, and the page
must have written them to its terminal (xterm.js marks the body ``-first-byte``). Every other
host name is mapped to nowhere in the browser, so nothing leaves the machine.

Where chromium is not installed or cannot start, that test is skipped with the reason.
Waiting is always bounded and on a condition (a port that answers, a frame that arrived).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tuikit import EVERY_STATUS, nanoagent, seed_database

NANOAGENT = str(Path(sys.executable).with_name("nanoagent"))
RUN_IDS = [seed.run_id for seed in EVERY_STATUS]
#: Escape sequences (CSI, OSC, and two-character ones) stripped from the terminal stream.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOAGENT_")}
    env |= {"HOME": str(home), "XDG_DATA_HOME": str(home / "xdg"), "NANOAGENT_HOST": "test-host"}
    return env


async def port_answers(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def until(probe: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(0.05)


@dataclass
class Served:
    port: int
    proc: asyncio.subprocess.Process
    err: Path


@contextlib.asynccontextmanager
async def serving(db: Path, tmp: Path) -> AsyncIterator[Served]:
    """``nanoagent serve --db DB --port P`` on a free port, in a session of its own (its
    dashboards die with it at the end)."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    for attempt in range(3):
        port = free_port()
        err = tmp / f"serve-{attempt}.err"
        with err.open("wb") as err_file:
            proc = await asyncio.create_subprocess_exec(
                NANOAGENT, "serve", "--db", str(db), "--port", str(port),
                env=serve_env(home), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err_file, start_new_session=True,
            )  # fmt: skip

        async def ready(port: int = port, proc: asyncio.subprocess.Process = proc) -> bool:
            return proc.returncode is not None or await port_answers(port)

        await until(ready, "the server listens")
        if proc.returncode is None:
            break
        await proc.wait()
        if "in use" not in err.read_text():  # another process took the port meanwhile
            raise AssertionError(f"serve exited {proc.returncode}: {err.read_text()}")
    else:
        raise AssertionError("no free port after three tries")
    try:
        yield Served(port, proc, err)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


@dataclass
class DevTools:
    """A minimal Chrome DevTools protocol client: one call at a time; events are kept."""

    ws: aiohttp.ClientWebSocketResponse
    events: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    next_id: int = 0

    async def _receive(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=TIMEOUT)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self.next_id += 1
        request: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session is not None:
            request["sessionId"] = session
        await self.ws.send_json(request)
        while True:
            data = await self._receive()
            if data.get("id") == self.next_id:
                assert "error" not in data, data
                return data.get("result", {})
            self.events.append(data)

    async def pump(self) -> None:
        """Wait for the next event."""
        self.events.append(await self._receive())


def received_text(events: list[dict[str, Any]]) -> str:
    """What the page's websocket received from the served dashboard, escape sequences
    removed."""
    chunks: list[bytes] = []
    for event in events:
        if event.get("method") != "Network.webSocketFrameReceived":
            continue
        response = event["params"]["response"]
        if response["opcode"] == 2:
            chunks.append(base64.b64decode(response["payloadData"]))
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


@contextlib.asynccontextmanager
async def chromium(tmp: Path) -> AsyncIterator[DevTools]:
    """Headless chromium with the DevTools protocol on a loopback port; skips the test with
    the reason where it cannot start."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    profile = tmp / "profile"
    log = tmp / "chromium.err"
    with log.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1600,1000", "about:blank",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
            start_new_session=True,
        )  # fmt: skip
    try:
        active = profile / "DevToolsActivePort"

        async def started() -> bool:
            if proc.returncode is not None:
                return True
            return active.exists() and active.read_text().count("\n") >= 1

        try:
            await until(started, "chromium starts", timeout=60)
        except AssertionError:
            pytest.skip(f"chromium did not start: {log.read_text()[-300:]}")
        if proc.returncode is not None:
            pytest.skip(f"chromium exited {proc.returncode}: {log.read_text()[-300:]}")
        port, path = active.read_text().split("\n")[:2]
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as ws,
        ):
            tools = DevTools(ws)
            try:
                yield tools
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(tools.call("Browser.close"), 10)
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


@pytest.mark.timeout(300)  # every wait inside is bounded; this is headroom on a busy machine
async def test_the_runs_appear_in_a_real_browser(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    await seed_database(db)
    async with serving(db, tmp_path) as served, chromium(tmp_path) as browser:
        target = await browser.call("Target.createTarget", url="about:blank")
        attached = await browser.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        session: str = attached["sessionId"]
        await browser.call("Network.enable", session)
        await browser.call("Page.enable", session)
        await browser.call("Page.navigate", session, url=f"http://127.0.0.1:{served.port}/")

        async def all_runs_arrived() -> bool:
            text = received_text(browser.events)
            if all(run_id in text for run_id in RUN_IDS):
                return True
            await browser.pump()
            return False

        await until(all_runs_arrived, "every run id reaches the page")
        text = received_text(browser.events)
        assert "crashed" in text  # the dashboard's status words, as on a terminal

        async def written() -> bool:
            result = await browser.call(
                "Runtime.evaluate",
                session,
                expression="document.body.classList.contains('-first-byte')"
                " && document.querySelector('.xterm') !== null",
                returnByValue=True,
            )
            return bool(result["result"].get("value"))

        await until(written, "the page's terminal shows the dashboard")
    assert served.proc.returncode == 0, served.err.read_text()


@pytest.mark.timeout(300)
async def test_a_page_of_another_origin_cannot_open_the_dashboard(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    await seed_database(db)
    async with serving(db, tmp_path) as served, aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{served.port}/ws?width=160&height=48"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, origin="http://evil.example")
        assert refused.value.status == 403
        received = b""
        async with http.ws_connect(url, origin=f"http://localhost:{served.port}") as ws:
            while not all(run_id.encode() in received for run_id in RUN_IDS):
                message = await ws.receive(timeout=TIMEOUT)
                if message.type is aiohttp.WSMsgType.BINARY:
                    received += message.data
                else:
                    assert message.type is aiohttp.WSMsgType.TEXT, message


def test_serve_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['textual_serve'] = None\n"
        "from nanoagent_tui.cli import main\n"
        f"sys.exit(main(['serve', '--db', {str(tmp_path / 'x.db')!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert "pip install 'nanoagent[serve]'" in done.stderr
    assert done.stdout == ""


def test_serve_warns_when_bound_beyond_loopback(tmp_path: Path) -> None:
    """192.0.2.1 (TEST-NET-1) is on no interface: the warning comes first, then the bind
    fails with one line; nothing listens anywhere."""
    done = subprocess.run(
        [NANOAGENT, "serve", "--db", str(tmp_path / "x.db"), "--host", "192.0.2.1",
         "--port", str(free_port())],
        env=serve_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done
    lines = done.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("nanoagent: warning: serving on 192.0.2.1:")
    assert "no authentication" in lines[0]
    assert lines[1].startswith("nanoagent: cannot serve on 192.0.2.1:")


@pytest.mark.parametrize(
    ("args", "word", "process"),
    [(["--port", "0"], "port", True), (["--port", "x"], "port", False),
     (["--db", ":memory:"], "--db PATH", False)],
)  # fmt: skip
def test_serve_bad_input(tmp_path: Path, args: list[str], word: str, process: bool) -> None:
    """One row as the real console script (no traceback from the interpreter); the others
    through its ``main`` in this process (the same code)."""
    if process:
        done: Any = subprocess.run(
            [NANOAGENT, "serve", *args], env=serve_env(tmp_path), capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
    else:  # the environment is the test's own (tests/conftest.py), as serve_env makes it
        done = nanoagent("serve", *args)
    assert done.returncode == 2, done
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert word in done.stderr
