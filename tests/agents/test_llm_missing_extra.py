"""Without the optional extra ``llm`` the core works and ``--agent llm`` says in one line how
to add it (exit 2). The missing extra is simulated in a subprocess whose sitecustomize makes
``pydantic_ai`` unimportable, not by uninstalling it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from agentkit import blocker_dir, cli, list_json


@pytest.fixture
def no_extra(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    blocked = blocker_dir(tmp_path / "blocker")
    return {**env, "PYTHONPATH": str(blocked)}


def test_the_blocker_works(no_extra: dict[str, str]):
    probe = subprocess.run(
        [sys.executable, "-c", "import pydantic_ai"], env=no_extra, capture_output=True, check=False
    )
    assert probe.returncode == 1
    assert b"ModuleNotFoundError" in probe.stderr


def test_llm_without_the_extra_says_how_to_add_it(db: str, no_extra: dict[str, str]):
    for detach in ([], ["--detach"]):
        refused = cli(
            "--db", db, "run", "Plan a trip", "--agent", "llm", "--option", "model=test",
            *detach, env=no_extra,
        )  # fmt: skip
        assert refused.code == 2, refused
        assert len(refused.err.splitlines()) == 1, refused.err
        assert "Traceback" not in refused.err
        assert "uv sync --extra llm" in refused.err
        assert "nanoagent[llm]" in refused.err
    assert list_json(db, no_extra) == []  # nothing stored


def test_the_core_works_without_the_extra(db: str, no_extra: dict[str, str]):
    done = cli("--db", db, "run", "A goal", "--option", "tasks=2", "--option", "delay=0",
               env=no_extra)  # fmt: skip
    assert done.code == 0, done
    assert "completed" in done.out
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; from nanoagent_core.demo import demo_runs;"
         "print(sorted(r.agent for r in demo_runs())); print('pydantic_ai' in sys.modules)"],
        env=no_extra, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.split("\n")[:2] == [str(["demo"] * 6), "False"]
