"""Options named like a secret are refused in one line, exit 2, before anything is stored,
for every agent (the check is in load_agent, which every path to a run goes through)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from agentkit import cli, here, list_json

from nanoagent_core.actions import new_run
from nanoagent_core.agents.base import Agent
from nanoagent_core.agents.options import is_secret_name, refuse_secret_options
from nanoagent_core.agents.registry import load_agent
from nanoagent_core.errors import ValidationError
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import RunState
from nanoagent_core.worker import resume_run

SECRET = "sk-do-not-show-0123456789"


@pytest.mark.parametrize(
    "name",
    ["api_key", "API_KEY", "openai_api_key", "apiKey", "token", "GITHUB_TOKEN", "auth-token",
     "client_secret", "Secret", "password", "db_passwd", "credentials", "private_key"],
)  # fmt: skip
def test_secret_like_names(name: str):
    assert is_secret_name(name)
    with pytest.raises(ValidationError, match=r"looks like a secret"):
        refuse_secret_options({name: SECRET})


@pytest.mark.parametrize(
    "name", ["model", "temperature", "max_tokens", "tokens", "tasks", "instructions", "keys"]
)
def test_ordinary_names(name: str):
    assert not is_secret_name(name)


@pytest.mark.parametrize("agent", ["demo", "llm", "no-such-agent"])
def test_every_agent_refuses_a_secret_option_before_it_is_built(agent: str):
    with pytest.raises(ValidationError) as caught:
        load_agent(agent, {"model": "test", "api_key": SECRET})
    assert "api_key" in str(caught.value)
    assert SECRET not in str(caught.value)
    with pytest.raises(ValidationError):
        new_run("r1", "goal", agent=agent, options={"Api_Token": SECRET})


@pytest.mark.parametrize("agent", ["demo", "llm"])
def test_the_command_refuses_in_one_line_and_stores_nothing(
    db: str, env: dict[str, str], agent: str
):
    # a real run first, so that the database exists and "nothing stored" is checkable
    assert here("--db", db, "run", "first", "--option", "delay=0", "--option", "tasks=1",
                env=env).code == 0  # fmt: skip
    for detach in ([], ["--detach"]):
        # in this process, but for one real process (no traceback from the interpreter)
        command = cli if (agent, detach) == ("llm", []) else here
        refused = command(
            "--db", db, "run", "Plan a trip", "--agent", agent, "--option", "model=test",
            "--option", f"OPENAI_API_KEY={SECRET}", "--run-id", "leaky", *detach, env=env,
        )  # fmt: skip
        assert refused.code == 2, refused
        assert refused.out == ""
        assert len(refused.err.splitlines()) == 1, refused.err
        assert "OPENAI_API_KEY" in refused.err
        assert "secret" in refused.err
        assert SECRET not in refused.err
    assert "leaky" not in {run["run_id"] for run in list_json(db, env)}


async def test_a_stored_secret_option_is_refused_on_resume():
    """A run written around the command (by hand, an old version) is not driven either."""
    store = MemoryStore()
    await store.create_run(
        RunState(run_id="r1", goal="g", max_iterations=5, agent_options={"password": SECRET})
    )
    with pytest.raises(ValidationError, match="password"):
        await resume_run(store, "r1", handle_signals=False)
    assert (await store.get_run("r1")).epoch == 0  # nothing claimed


def test_an_agent_that_takes_any_option_is_protected_too(monkeypatch: pytest.MonkeyPatch):
    """The refusal does not rely on agents rejecting unknown options: an installed agent that
    stores whatever it is given never sees a secret-named one."""
    from nanoagent_core.agents import registry
    from nanoagent_core.agents.demo import make_demo_agent

    built: list[dict[str, str]] = []

    def permissive(options: Mapping[str, str]) -> Agent:
        built.append(dict(options))
        return make_demo_agent({})

    monkeypatch.setitem(registry._BUILTIN, "permissive", permissive)  # pyright: ignore[reportPrivateUsage]
    assert load_agent("permissive", {"region": "eu"}).name == "demo"
    with pytest.raises(ValidationError, match="'Session_Token' looks like a secret"):
        load_agent("permissive", {"region": "eu", "Session_Token": SECRET})
    with pytest.raises(ValidationError, match="looks like a secret"):
        new_run("r1", "goal", agent="permissive", options={"db_password": SECRET})
    assert built == [{"region": "eu"}]
