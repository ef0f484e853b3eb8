"""The mutation check (bench/mutations.py) edits the product code by exact text: when the code
moves (a file split, a rename), a mutation whose text is gone would no longer test anything.
Each edit's text must occur exactly once in its file, as the script requires."""

from __future__ import annotations

import pytest

from bench.mutations import MUTATIONS, ROOT, Mutation


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_mutation_still_applies_to_the_code(mutation: Mutation) -> None:
    for path, text, replacement in mutation.edits:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert source.count(text) == 1, f"{path}: the mutated text is not there exactly once"
        assert text != replacement
