"""Fixtures of every test: the places nanoagent reads from its environment are the test's own.

The suite runs in parallel (pytest-xdist, ``-n`` in pyproject's addopts), so no test may share
a default location with another one running at the same time, nor with the person running the
suite: a home, data, state, config and cache directory of its own for each test (the default
database and a PostgreSQL run's worker log under ``$XDG_DATA_HOME/nanoagent``, ``nanoagent
watch``'s state under ``$XDG_STATE_HOME/nanoagent``), and no ``NANOAGENT_*`` variable from the
shell that started pytest (``NANOAGENT_TEST_*`` and ``NANOAGENT_BENCH_*``, which say how to
test, are kept). Commands the tests start inherit this environment. A test that wants other
values sets them itself (its own ``monkeypatch`` or the ``env=`` of a command), as before.

Not in ``tmp_path``: a test may own its ``tmp_path`` whole (e.g. check that nothing was written
there).
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import pytest
from hypothesis import settings

#: The XDG base directories (https://specifications.freedesktop.org/basedir-spec/).
XDG = ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
#: Variables that configure the tests or the benchmarks, not nanoagent.
KEPT = ("NANOAGENT_TEST_", "NANOAGENT_BENCH_")

# Hypothesis fails an example slower than 200 ms by default: a timing check, which a loaded
# machine running the suite in parallel can trip. What the properties assert is unchanged.
settings.register_profile("nanoagent", deadline=None)
settings.load_profile("nanoagent")

#: nanoagent's packages (an editable install: uv's compile-bytecode leaves them as source).
PACKAGES = tuple(Path(__file__).parents[1] / name for name in ("nanoagent_core", "nanoagent_tui"))


def pytest_configure(config: pytest.Config) -> None:
    """Compile nanoagent's own modules once, before any test starts a ``nanoagent`` process.

    With PYTHONDONTWRITEBYTECODE set (as where the suite is run here), no process
    writes a ``.pyc``, so each of the hundreds of commands and workers the suite starts compiled the
    whole package again at start (a fifth of its start-up CPU). Timestamped, as Python's own:
    an edited module is compiled again from its source. Once, in the xdist controller."""
    if not hasattr(config, "workerinput"):
        for package in PACKAGES:
            compileall.compile_dir(package, quiet=1)


@pytest.fixture(autouse=True)
def _own_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path_factory.mktemp("env")
    home = base / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in XDG:
        monkeypatch.setenv(name, str(base / name.lower()))
    for name in list(os.environ):
        if name.startswith("NANOAGENT_") and not name.startswith(KEPT):
            monkeypatch.delenv(name)
