"""Fixtures of the loop, worker and command-line tests: a fresh database path per test, an
in-memory store, a home of its own for the commands, and a reaper for detached workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loopkit import Reaper, clean_env

from nanoagent_core.memory_store import MemoryStore


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh database path per test (the file does not exist yet)."""
    return str(tmp_path / "runs.db")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of the commands: no NANOAGENT_* variable, and a home and data
    directory inside tmp_path, so that a forgotten ``--db`` cannot touch the real ones."""
    home = tmp_path / "home"
    home.mkdir()
    return clean_env(HOME=str(home), XDG_DATA_HOME=str(tmp_path / "xdg"))


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    """Detached workers a test started; any still alive at teardown are SIGKILLed."""
    tracked = Reaper()
    try:
        yield tracked
    finally:
        tracked.kill_all()
