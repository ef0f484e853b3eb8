"""Every stored snapshot belongs to a snapshot test.

syrupy (under pytest-textual-snapshot) fails a run that leaves a snapshot file unused (a test
renamed or removed, its picture left behind), but only when the whole run is one process: under
pytest-xdist, which the suite runs with, each worker sees a share of the tests and syrupy skips
the check. This test keeps it: each ``.svg`` in ``__snapshots__`` must be named after one of
the snapshot tests, as syrupy names them (``Class.test[param]``). When this session collected
the whole snapshot module (the suite, ``tests/tui``...), its tests are those; else (only some
of them, or none) they are collected (not run) in a child pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def _collected_names(config: pytest.Config, collected: frozenset[str]) -> set[str]:
    """``Class.test[param]`` of the snapshot tests this session collected, when it collected
    the whole module (an argument names it or a directory above it, not some of its tests);
    else nothing."""
    here, module_path = config.invocation_params.dir, SNAPSHOT_TESTS.resolve()
    named = [(here / arg).resolve() for arg in config.args if "::" not in arg]
    whole = any(path == module_path or path in module_path.parents for path in named)
    module = f"{SNAPSHOT_TESTS.relative_to(config.rootpath).as_posix()}::"
    return {
        ".".join(node.split("::")[1:]) for node in collected if whole and node.startswith(module)
    }


def test_every_stored_snapshot_has_its_test(
    request: pytest.FixtureRequest, collected: frozenset[str]
) -> None:
    stored = {path.stem for path in STORED.glob("*.svg")}
    assert stored, f"no snapshots in {STORED}"
    names = _collected_names(request.config, collected) or _snapshot_names()
    unused = sorted(stored - names)
    assert not unused, f"snapshot files no test uses (delete them): {unused}"
