"""Fixtures of the dashboard tests: local times in UTC, a fixed host name, a fresh
database directory per test (the current directory, so that the database path shown on
screen is the same on every machine), a reaper for the workers a test starts, and the ids of
every test this session collected (deselected ones included)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nanoagent_core.launch import reap_workers

os.environ["TZ"] = "UTC"
time.tzset()

_COLLECTED = pytest.StashKey[frozenset[str]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before ``-m``, ``-k`` or ``--deselect`` take any away (each xdist worker collects
    every test)."""
    config.stash[_COLLECTED] = frozenset(item.nodeid for item in items)


@pytest.fixture
def collected(request: pytest.FixtureRequest) -> frozenset[str]:
    """The node ids of every test collected this session, deselected ones included."""
    return request.config.stash.get(_COLLECTED, frozenset())


@pytest.fixture(autouse=True)
def _host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Owners are recorded and checked under one host name (workers inherit it)."""
    monkeypatch.setenv("NANOAGENT_HOST", "test-host")
    monkeypatch.delenv("NANOAGENT_DB", raising=False)
    monkeypatch.delenv("NANOAGENT_ALLOWED_DIR", raising=False)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory, made the current one: databases are named relative to it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def workers() -> Iterator[list[int]]:
    """Pids of workers a test started; any still alive at teardown are SIGKILLed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    reap_workers()
