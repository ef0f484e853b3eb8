"""Issue 9 item 4: a PostgreSQL password never shows: not in the dashboard header, not on
``run``'s first line, not in an error (``?password=`` in the query included), not in a
traceback for a malformed address (one line, exit 2 instead), and not on a detached worker's
command line (the location reaches it through its environment). The commands whose claim is
what they print run in this process (pgkit.here); a few of each table as real processes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pgkit import ahere, cli, here, wait_for
from rich.console import Console

from nanoagent_core.paths import display_location
from nanoagent_core.postgres import PostgresStore
from nanoagent_tui.app import DashboardApp
from nanoagent_tui.live import Health
from nanoagent_tui.widgets.top_bar import TopBar

SECRET = "hunter2sekrit"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://u:{SECRET}@h:5/db", "postgresql://u:***@h:5/db"),
        (f"postgresql://u:{SECRET}@[::1", "postgresql://u:***@[::1"),
        (f"postgres://u:a@b:{SECRET}@h/db", "postgres://u:***@h/db"),
        (
            f"postgresql://u@h/db?schema=s&password={SECRET}&x=1",
            "postgresql://u@h/db?schema=s&password=***&x=1",
        ),
        (f"postgresql://h/db?sslpassword={SECRET}#f", "postgresql://h/db?sslpassword=***#f"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("/var/lib/x.db", "/var/lib/x.db"),
    ],
)
def test_display_location_masks_every_password(url: str, shown: str) -> None:
    assert display_location(url) == shown


COMMANDS = (
    ["run", "goal"],
    ["run", "goal", "--detach"],
    ["resume", "r1"],
    ["resume", "r1", "--detach"],
    ["abort", "r1"],
    ["list"],
    ["show", "r1"],
    ["demo", "--no-dashboard"],
    ["tui"],
    [],
)
#: run as real processes too (no traceback from the interpreter); the rest in this process
IN_A_PROCESS = (["run", "goal", "--detach"], [])


@pytest.mark.parametrize("via_env", [False, True], ids=["--db", "NANOAGENT_DB"])
def test_a_malformed_address_is_one_line_and_exit_2(via_env: bool) -> None:
    url = f"postgresql://u:{SECRET}@[::1"
    for command in COMMANDS:
        args = command if via_env else [*command, "--db", url]
        runner = cli if command in IN_A_PROCESS else here
        done = runner(args, env={"NANOAGENT_DB": url} if via_env else None)
        assert done.returncode == 2, (command, done)
        lines = done.stderr.splitlines()
        assert len(lines) == 1, (command, done.stderr)
        assert "malformed PostgreSQL address" in lines[0]
        assert SECRET not in done.stderr + done.stdout


def test_a_password_in_the_query_string_stays_out_of_errors() -> None:
    url = f"postgresql://nobody@127.0.0.1:1/db?password={SECRET}"
    for command in (["list"], ["run", "goal"], ["show", "r1"]):
        done = (cli if command == ["run", "goal"] else here)([*command, "--db", url])
        assert done.returncode == 2, done
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert "cannot connect" in done.stderr
        assert SECRET not in done.stderr + done.stdout


def with_password(location: str) -> str:
    assert location.startswith("postgresql://postgres@"), location
    return location.replace("postgres@", f"postgres:{SECRET}@", 1)


def test_run_and_show_never_print_the_password(location: str) -> None:
    url = with_password(location)  # the test server trusts: the password is not checked
    done = here(["run", "goal", "--option", "tasks=1", "--option", "delay=0", "--db", url])
    assert done.returncode == 0, done
    first = done.stdout.splitlines()[0]
    assert first.endswith(display_location(url)), first
    assert SECRET not in done.stdout + done.stderr


async def test_a_detached_worker_gets_the_url_through_its_environment(
    location: str, store: PostgresStore
) -> None:
    url = with_password(location)
    done = cli(["run", "long", "--detach", "--option", "delay=60"], env={"NANOAGENT_DB": url})
    assert done.returncode == 0, done
    assert SECRET not in done.stdout + done.stderr
    run_id = done.stdout.strip()
    run = await store.get_run(run_id)  # it has claimed before run --detach returned
    assert run.owner is not None
    pid = run.owner.pid
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()  # what ps shows any user
        assert SECRET.encode() not in argv, argv
        assert b"postgresql" not in argv, argv
    finally:
        aborted = await ahere(["abort", run_id, "--db", location])
        assert aborted.returncode == 0, aborted

    async def ended() -> bool:
        return (await store.get_run(run_id)).status.finished

    await wait_for(ended, timeout=60, what="the detached run to end aborted")


async def test_the_dashboard_header_masks_the_password(location: str) -> None:
    url = with_password(location)
    app = DashboardApp(url, animate=False)
    async with app.run_test(size=(160, 30)) as pilot:
        deadline = 200
        while app.live.health is not Health.LIVE and deadline:
            await pilot.pause(0.05)
            deadline -= 1
        await pilot.pause(0.1)
        bar = app.screen.query_one(TopBar)
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(bar.content)
        header = console.export_text()
    assert display_location(url) in header, header
    assert SECRET not in header, header
