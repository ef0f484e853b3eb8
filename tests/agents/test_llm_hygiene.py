"""What the llm agent costs the rest: the core does not import pydantic-ai until an llm agent
is built, the adapter imports no UI, and a process that builds an all-``test`` agent can no
longer reach a real model. Each probe runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest


def probe(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    "module", ["nanoagent_core.cli", "nanoagent_core.agents.registry", "nanoagent_core.demo"]
)
def test_the_core_does_not_import_pydantic_ai_until_asked(module: str):
    out = probe(f"import sys, {module}; print('pydantic_ai' in sys.modules)")
    assert out == "False"


def test_the_adapter_imports_no_ui():
    out = probe(
        "import sys, nanoagent_core.agents.pydantic_ai\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'rich', 'nanoagent_tui')))"
    )
    assert out == "[]"


def test_building_a_test_model_agent_turns_model_requests_off():
    out = probe(
        "import pydantic_ai.models as m\n"
        "from nanoagent_core.agents.registry import load_agent\n"
        "before = m.ALLOW_MODEL_REQUESTS\n"
        "load_agent('llm', {'model': 'test'})\n"
        "print(before, m.ALLOW_MODEL_REQUESTS)"
    )
    assert out == "True False"
