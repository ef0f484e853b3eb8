"""Every stored snapshot belongs to a snapshot test.

syrupy (under pytest-textual-snapshot) fails a run that leaves a snapshot file unused (a test
renamed or removed, its picture left behind), but only when the whole run is one process: under
pytest-xdist, which the suite runs with, each worker sees a share of the tests and syrupy skips
the check. This test keeps it: the snapshot tests are collected (not run) in a child pytest,
and each ``.svg`` in ``__snapshots__`` must be named after one of them, as syrupy names them
(``Class.test[param]``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SNAPSHOT_TESTS = HERE / "test_tui_snapshots.py"
STORED = HERE / "__snapshots__" / SNAPSHOT_TESTS.stem


def _snapshot_names() -> set[str]:
    """``Class.test[param]`` of every test in the snapshot module, slow ones included."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-m", "",
         str(SNAPSHOT_TESTS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE.parent.parent,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    names = {".".join(line.split("::")[1:]) for line in done.stdout.splitlines() if "::" in line}
    assert names, done.stdout
    return names


def test_every_stored_snapshot_has_its_test() -> None:
    stored = {path.stem for path in STORED.glob("*.svg")}
    assert stored, f"no snapshots in {STORED}"
    unused = sorted(stored - _snapshot_names())
    assert not unused, f"snapshot files no test uses (delete them): {unused}"
