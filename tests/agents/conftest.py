"""Fixtures of the agent tests. Offline only: no test here may reach a real model, so the
whole session runs with pydantic-ai's ALLOW_MODEL_REQUESTS off (TestModel and FunctionModel
do not ask; any real provider would raise)."""

from __future__ import annotations

from pathlib import Path

import pydantic_ai.models
import pytest
from agentkit import clean_env

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh database path per test (the file does not exist yet)."""
    return str(tmp_path / "runs.db")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The commands' environment: no NANOAGENT_* variable, a home of its own, and no provider
    key (a test that needed one would be reaching for a real model)."""
    home = tmp_path / "home"
    home.mkdir()
    return clean_env(HOME=str(home), XDG_DATA_HOME=str(tmp_path / "xdg"))
