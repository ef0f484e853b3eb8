"""Contract (every store): text search ignores case for every alphabet, not ASCII only.

The memory and PostgreSQL stores folded non-ASCII case (``Écrire`` found ``écrire``); SQLite's
own LIKE folds ASCII only, so the SQLite store did not. All three now fold alike
(store_rules.fold).
"""

from __future__ import annotations

from storekit import new_run

from nanoagent_core.protocols import Store


async def test_text_search_ignores_non_ascii_case(store: Store) -> None:
    await store.create_run(new_run("r-fr", goal="écrire un poème"))
    await store.create_run(new_run("r-ru", goal="Привет мир"))
    await store.create_run(new_run("r-gr", goal="ΣΟΦΙΑ"))
    await store.create_run(new_run("r-plain", goal="nothing here"))

    async def found(text: str) -> list[str]:
        return sorted(run.run_id for run in await store.list_runs(text=text))

    assert await found("Écrire") == ["r-fr"]
    assert await found("ÉCRIRE UN") == ["r-fr"]
    assert await found("écrire") == ["r-fr"]
    assert await found("ПРИВЕТ") == ["r-ru"]
    assert await found("привет") == ["r-ru"]
    assert await found("σοφια") == ["r-gr"]
    assert await found("Poème") == ["r-fr"]
    assert await found("poeme") == []  # case is folded, accents are not
