"""Smoke test of the benchmarks: each section runs at tiny sizes and gives well-formed numbers.

Speed is not checked here (timing goals live in bench/, not in tests)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench import concurrency, crash, dashboard, live, pg, scale, step_cost
from bench.common import Config, SectionResult, Stat, fmt
from bench.report import machine, markdown_table, render

#: SQLite only: PostgreSQL has tests of its own below (they skip its rows without a server).
TINY = replace(Config.tiny(), pg_url=None)
#: A port where nothing listens: what the tables show without a server.
NO_SERVER = replace(TINY, pg_url="postgresql://postgres@127.0.0.1:1/none")
PG_URL = pg.default_url()
PG = replace(TINY, pg_url=PG_URL)
needs_server = pytest.mark.skipif(
    PG_URL is None or pg.reachable(PG_URL) is not None, reason="no PostgreSQL server"
)


def _well_formed(result: SectionResult) -> None:
    assert result.rows, result.title
    for row in result.rows:
        assert len(row) <= len(result.headers), row
    for key, stat in result.data.items():
        assert stat.n >= 1, key
        for value in stat.values:
            assert math.isfinite(value), (key, value)
            assert value >= 0, (key, value)
        assert stat.low <= stat.median <= stat.high, key
    assert result.seconds > 0


def test_step_cost(tmp_path: Path) -> None:
    result = step_cost.run(TINY, tmp_path)
    _well_formed(result)
    for sync in ("NORMAL", "FULL"):
        assert result.data[f"floor_{sync}"].median > 0
        assert result.data[f"loop_tasks_{sync}"].n == TINY.repeats
        assert result.data[f"loop_steps_{sync}"].median > result.data[f"loop_tasks_{sync}"].median
    # both goals measured (met or not is the machine's speed, not the smoke test's business)
    assert [type(g.met) for g in result.goals] == [bool, bool, bool]
    assert result.data["journal_cost_NORMAL"].n == TINY.repeats  # with a journal vs without


def test_concurrency_has_no_errors(tmp_path: Path) -> None:
    result = concurrency.run(TINY, tmp_path)
    _well_formed(result)
    assert result.data["errors"].high == 0
    assert result.data["tasks_per_s"].median > 0


def test_scale_side_by_side(tmp_path: Path) -> None:
    result = scale.run(TINY, tmp_path)
    _well_formed(result)
    small, big = (runs for runs, _ in TINY.scale_sizes)
    for key in ("idle_poll", "refresh", "first_page", "list_all", "list_50"):
        assert result.data[f"{key}_{small}"].median > 0
        assert result.data[f"{key}_{big}"].median > 0
    assert len(result.headers) == 3 + len(TINY.scale_sizes)


def test_crash_and_resume(tmp_path: Path) -> None:
    result = crash.run(TINY, tmp_path)
    _well_formed(result)
    assert result.data["detect_ms"].n == 2 * TINY.crash_repeats
    assert result.data["resume_fg_ms"].median > 0
    assert result.data["resume_bg_ms"].median > 0


def test_live_latency(tmp_path: Path) -> None:
    result = live.run(TINY, tmp_path)
    assert dashboard.available()  # the dashboard exists: an import error fails here
    _well_formed(result)
    latency = result.data["latency_ms"]
    assert latency.n >= TINY.live_events


def test_postgres_rows_say_skipped_without_server() -> None:
    assert pg.skip_reason(NO_SERVER.pg_url) is not None
    rows, data = step_cost.pg_rows(NO_SERVER, [], [], pg.skip_reason(NO_SERVER.pg_url))
    assert rows
    assert not data
    assert all(pg.SKIPPED in row for row in rows)
    rows, goals, _, data = live.pg_section(NO_SERVER)
    assert all(pg.SKIPPED in row for row in rows)
    assert not data
    assert goals[0].met is None
    assert goals[0].measured == pg.SKIPPED


@needs_server
def test_postgres_step_cost_and_concurrency() -> None:
    assert PG.pg_url is not None
    with pg.throwaway_schema(PG.pg_url, "test") as location:
        sample = asyncio.run(step_cost.pg_sample(location, 10, 2, "t"))
    assert sample.loop.tasks == 20
    assert sample.replay is not None
    assert sample.replay.steps == sample.loop.steps
    rows, data = step_cost.pg_rows(PG, [sample], [sample.loop], None)
    assert data["pg_loop_tasks"].median > 0
    assert len(rows) == 6
    samples, singles = concurrency.pg_samples(replace(PG, procs=2, tasks_per_proc=10), PG.pg_url)
    assert [s.errors for s in [*samples, *singles]] == [0, 0]
    assert samples[0].tasks_per_s > 0


@needs_server
def test_postgres_live_latency() -> None:
    rows, goals, notes, data = live.pg_section(PG)
    assert data["pg_push_ms"].n >= PG.live_events
    assert goals[0].met is not None
    assert dashboard.available()
    assert len(rows) == 2, notes  # the dashboard pass's failure, if any, is in the notes


def test_report_renders(tmp_path: Path) -> None:
    section = SectionResult(
        title="x", headers=["what", "median"], rows=[["a", fmt(1234.5)]], data={}
    )
    text = render(
        command="python -m bench",
        label="tiny",
        facts=machine(tmp_path),
        sections=[section],
        total_seconds=1.0,
    )
    assert "1,234" in text
    assert "SQLite" in text
    assert "CPU" in text
    assert markdown_table(["a", "b"], [["x", "1"]]).count("\n") == 2


@pytest.mark.parametrize(
    ("values", "median", "p95"), [((1.0, 2.0, 3.0), 2.0, 3.0), ((5.0,), 5.0, 5.0)]
)
def test_stat(values: tuple[float, ...], median: float, p95: float) -> None:
    stat = Stat.of(values)
    assert stat.median == median
    assert stat.quantile(0.95) == p95
