"""What the llm agent costs the rest: the core does not import pydantic-ai until an llm agent
is built, the adapter imports no UI, and a process that builds an all-``test`` agent can no
longer reach a real model. One fresh interpreter answers every probe, in that order (each
import only adds modules: if the core modules together import no pydantic-ai, neither does
any one of them), and each test checks its own answers."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

CORE = ["nanoagent_core.cli", "nanoagent_core.agents.registry", "nanoagent_core.demo"]

PROBE = f"""
import json, sys
report = {{"core": {{}}}}
for module in {CORE!r}:
    __import__(module)
    report["core"][module] = "pydantic_ai" in sys.modules
import nanoagent_core.agents.pydantic_ai
report["ui"] = sorted(
    m for m in sys.modules if m.split(".")[0] in ("textual", "rich", "nanoagent_tui")
)
import pydantic_ai.models as m
from nanoagent_core.agents.registry import load_agent
before = m.ALLOW_MODEL_REQUESTS
load_agent("llm", {{"model": "test"}})
report["requests"] = [before, m.ALLOW_MODEL_REQUESTS]
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def probed() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", CORE)
def test_the_core_does_not_import_pydantic_ai_until_asked(probed: dict[str, Any], module: str):
    assert probed["core"][module] is False


def test_the_adapter_imports_no_ui(probed: dict[str, Any]):
    assert probed["ui"] == []


def test_building_a_test_model_agent_turns_model_requests_off(probed: dict[str, Any]):
    assert probed["requests"] == [True, False]
