"""Helpers of the agent tests (a plain module: pytest puts this directory on ``sys.path``).

The ``nanoagent`` command runs as the real console script of this environment, in real
subprocesses (:func:`cli`), or in this process (:func:`here`: the same ``main(argv)`` the
console script calls, without a second interpreter's start-up, ~0.7 s of CPU for an ``llm``
run) where a test's claim is about what the command prints, its exit status or what it
writes, not about the process. Waiting is a bounded poll on a condition, never a bare sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmdkit import run_here

#: The ``nanoagent`` console script of the environment running the tests.
NANOAGENT = str(Path(sys.executable).with_name("nanoagent"))

#: Environment variables of model providers: never passed on to a command under test.
_PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                  "GROQ_API_KEY", "MISTRAL_API_KEY", "CO_API_KEY")  # fmt: skip


def clean_env(**overrides: str | None) -> dict[str, str]:
    """This environment without NANOAGENT_* variables or provider keys, plus ``overrides``
    (None removes a variable)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NANOAGENT_") and k not in _PROVIDER_KEYS
    }
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def cli(*args: str, env: Mapping[str, str], timeout: float = 90.0) -> Result:
    """Run ``nanoagent ARGS`` to its end."""
    done = subprocess.run(
        [NANOAGENT, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def here(*args: str, env: Mapping[str, str]) -> Result:
    """Run ``nanoagent ARGS`` in this process (cmdkit.run_here), as :func:`cli` runs it in a
    subprocess: the console script's ``main(argv)`` with exactly ``env`` as the environment,
    an empty stdin, stdout and stderr captured."""
    from nanoagent_core.cli import main

    return Result(*run_here(main, args, env))


def show_json(db: str, run_id: str, env: Mapping[str, str]) -> dict[str, Any]:
    """``nanoagent show RUN_ID --json`` (in this process: a fresh store on the file)."""
    shown = here("show", run_id, "--json", "--db", db, env=env)
    assert shown.code == 0, shown
    return json.loads(shown.out)


def list_json(db: str, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """``nanoagent list --json`` (in this process)."""
    listed = here("list", "--json", "--db", db, env=env)
    assert listed.code == 0, listed
    return json.loads(listed.out)


def copy_db(src: str | Path, dst: str | Path) -> None:
    """Copy a SQLite database no connection holds open (with its -wal file, if any is left):
    a setup built once (a module's fixture), for a test that writes to it."""
    for suffix in ("", "-wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


def outcome(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What a finished run came to, without what a crash may change (attempt counts)."""
    return {
        "status": doc["status"],
        "tasks": [
            (t["id"], t["description"], t["status"], t["result"], t["error"]) for t in doc["tasks"]
        ],
        "results": doc["results"],
        "result": doc["result"],
    }


def wait_for(probe: Callable[[], Any], ok: Callable[[Any], bool], *, timeout: float) -> Any:
    """Poll ``probe()`` until ``ok(value)``; AssertionError with the last value after
    ``timeout`` seconds (generous: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout:g}s; last: {value!r}")
        time.sleep(0.1)


def blocker_dir(tmp: Path) -> Path:
    """A directory whose ``sitecustomize`` makes ``pydantic_ai`` (and its own parts) fail to
    import, as if the extra ``llm`` were not installed; put it on PYTHONPATH."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys

            BLOCKED = ("pydantic_ai", "pydantic_graph", "genai_prices")


            class _NoLLMExtra:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in BLOCKED:
                        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                    return None


            sys.meta_path.insert(0, _NoLLMExtra())
            """
        )
    )
    return tmp
