"""Smoke test of bench section 7 (prune) at tiny sizes: it prunes 90% of the runs while a
worker process commits, keeps the rest intact and shrinks the file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench import prune
from bench.common import Config


def test_prune_section(tmp_path: Path) -> None:
    result = prune.run(replace(Config.tiny(), pg_url=None), tmp_path)
    cells = {row[0]: row[2:] for row in result.rows}
    assert cells["runs pruned (of the database's)"][0] == "1,800 of 2,000"
    assert cells["the rest intact (rows of 10% kept, hashed before/after)"][0] == "True"
    shrinks = result.goals[1]
    assert shrinks.met, shrinks
    assert "never touched" in result.notes[1]
    assert "running" in result.notes[1]
