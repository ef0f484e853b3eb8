"""Smoke test of bench section 8 (pool worker) at tiny sizes: one pool process drives every
queued run to completion with no error, the dashboard figures are taken on both databases,
and a killed worker's run is taken up again by a recovering pool, on either placement."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench import pool
from bench.common import Config


def test_pool_section(tmp_path: Path) -> None:
    result = pool.run(replace(Config.tiny(), pg_url=None), tmp_path)
    completed, memory = result.goals[0], result.goals[1]
    assert completed.met, completed
    assert completed.measured == "20 completed, 0 errors"
    assert memory.met is not None
    assert result.data["rss_mb"].median > 0
    assert result.data["dash_ratio"].n == 1
    recovered = [row for row in result.rows if row[0].startswith("recovery after SIGKILL")]
    assert len(recovered) == 2  # same host and another host, each taken up again
    assert result.data["recover_leases"].n == 2
