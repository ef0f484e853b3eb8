"""Smoke test of the peers section (6): with the bench dependency group it runs at tiny sizes
and gives well-formed numbers; without it, it says in one line why it was skipped. The default
test run does not need the group. Speed is not checked here."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench import peers
from bench.common import Config

TINY = replace(Config.tiny(), pg_url=None)
SKIPPED = peers.missing()


@pytest.mark.skipif(SKIPPED is not None, reason=SKIPPED or "")
def test_peers_run_side_by_side(tmp_path: Path) -> None:
    result = peers.run(TINY, tmp_path)
    assert [row[0] for row in result.rows] == list(peers.SYSTEMS)
    for key, stat in result.data.items():
        assert stat.n >= 1, key
        assert all(math.isfinite(v) and v > 0 for v in stat.values), key
    assert result.goals[0].met is not None
    settings = result.notes[-1]
    # every system wrote at synchronous FULL in WAL (read back from its own connection)
    for name in peers.SYSTEMS:
        part = settings.split(f"{name}: ", 1)[1]
        assert part.startswith("journal_mode=wal, synchronous=FULL"), part


def test_peers_skip_with_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as without the group: one of its modules cannot be found
    monkeypatch.setattr(peers, "PEER_MODULES", ("nanoagent_bench_no_such_module",))
    reason = peers.missing()
    assert reason is not None
    assert "\n" not in reason
    assert "--group bench" in reason
    result = peers.run(TINY, tmp_path)
    assert not result.data
    assert result.goals[0].met is None
    assert result.notes == [reason]
    assert all(row[1] == reason for row in result.rows)
    assert not list(tmp_path.iterdir())  # nothing ran


def test_rewrite_keeps_hand_written_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.__main__ import HAND_WRITTEN, main

    monkeypatch.setattr(peers, "PEER_MODULES", ("nanoagent_bench_no_such_module",))
    out = tmp_path / "RESULTS.md"
    out.write_text(f"old tables\n\n{HAND_WRITTEN}\n\n## Profile\n\nby hand\n", encoding="utf-8")
    code = main(["--sections", "peers", "--pg", "none", "--out", str(out)])
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert "old tables" not in text
    assert "skipped: bench dependency group not installed" in text
    assert text.endswith(f"{HAND_WRITTEN}\n\n## Profile\n\nby hand\n")
    assert text.count(HAND_WRITTEN) == 1
