"""``nanoagent serve``: the dashboard in a browser, through textual-serve (the extra
``nanoagent[serve]``).

Each browser tab gets its own dashboard process (``python -m nanoagent_tui.cli tui``), started
by textual-serve through a shell. The database location reaches it in ``NANOAGENT_DB``, never on
its command line, since a PostgreSQL URL may hold a password.

There is no authentication: whoever reaches the port can start, resume and abort runs. So the
server listens on 127.0.0.1 by default, warns on stderr when told to listen elsewhere, and
refuses a websocket opened by a page of another origin (any web site the user visits could
otherwise drive the local dashboard from the user's own browser).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from nanoagent_core.defaults import DB_VAR
from nanoagent_core.paths import is_postgres_url

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["INSTALL_HINT", "dashboard_command", "is_loopback", "serve_dashboard"]

INSTALL_HINT = (
    "nanoagent: 'serve' needs textual-serve: pip install 'nanoagent[serve]'"
    " (in a checkout: uv sync --extra serve)"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dashboard_command() -> str:
    """The shell command textual-serve runs per browser tab (no database location in it; like a
    detached worker, nothing is imported from the current directory)."""
    return shlex.join([sys.executable, "-P", "-m", "nanoagent_tui.cli", "tui"])


def _origin(host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return f"http://{name}" if port == 80 else f"http://{name}:{port}"


def _allowed_origins(host: str, port: int, public_url: str) -> frozenset[str]:
    """Origins whose pages may open the dashboard's websocket."""
    parts = urlsplit(public_url)
    allowed = {f"{parts.scheme}://{parts.netloc}".casefold(), _origin(host, port)}
    if is_loopback(host):
        allowed.update(_origin(name, port) for name in ("localhost", "127.0.0.1", "::1"))
    return frozenset(allowed)


def serve_dashboard(location: str, host: str, port: int, public_url: str | None) -> int:
    """Serve the dashboard on ``host:port`` until interrupted; the exit status."""
    try:
        from aiohttp import web
        from textual_serve.server import Server
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    if not is_loopback(host):
        print(
            f"nanoagent: warning: serving on {host}:{port} with no authentication: anyone who"
            " can reach it can start, resume and abort runs",
            file=sys.stderr,
        )
    if not is_postgres_url(location):
        location = os.path.abspath(location)
    os.environ[DB_VAR] = location  # inherited by each dashboard process
    url = public_url or _origin(host, port)
    allowed = _allowed_origins(host, port, url)

    class _Server(Server):
        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            origin = request.headers.get("Origin", "").casefold()
            if origin not in allowed:
                raise web.HTTPForbidden(text="this page's origin may not open the dashboard")
            return await super().handle_websocket(request)

    server = _Server(dashboard_command(), host=host, port=port, title="nanoagent", public_url=url)
    try:
        server.serve()
    except OSError as exc:
        print(f"nanoagent: cannot serve on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
