"""Every store is an async context manager: ``async with await open_store(...)`` closes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from storekit import new_run

from nanoagent_core.errors import DatabaseError
from nanoagent_core.paths import MEMORY
from nanoagent_core.stores import open_store


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_async_with_closes_the_store(kind: str, tmp_path: Path) -> None:
    location = MEMORY if kind == "memory" else str(tmp_path / "ctx.db")
    async with await open_store(location) as store:
        await store.create_run(new_run("r"))
        assert [run.run_id for run in await store.list_runs()] == ["r"]
    with pytest.raises(DatabaseError, match="closed"):
        await store.list_runs()
