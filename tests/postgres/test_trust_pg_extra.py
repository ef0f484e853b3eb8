"""PostgreSQL support is the extra ``nanoagent[postgres]``: without psycopg, a postgresql://
location is refused in one line that says how to install it (exit 2), and SQLite still works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# psycopg made unimportable in the child, as in an install without the extra
CHILD = """
import sys
sys.modules["psycopg"] = None
sys.modules["psycopg_pool"] = None
from nanoagent_tui.cli import main
sys.argv = ["nanoagent", *sys.argv[1:]]
sys.exit(main())
"""


def run_without_psycopg(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NANOAGENT_DB": db}
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_postgres_location_without_the_extra_says_how_to_install_it() -> None:
    done = run_without_psycopg("postgresql://someone:s3cret@127.0.0.1:1/db", "list")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "nanoagent[postgres]" in lines[0]
    assert "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr + done.stdout


def test_sqlite_works_without_the_extra(tmp_path: Path) -> None:
    done = run_without_psycopg(str(tmp_path / "x.db"), "list")
    assert done.returncode == 0, done.stderr
