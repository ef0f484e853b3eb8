"""What every section shares: sizes, statistics, results and how to start a Python child."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.pg import default_url

__all__ = [
    "REPO_ROOT",
    "Config",
    "Figure",
    "Goal",
    "SectionResult",
    "Stat",
    "child_env",
    "fmt",
    "fmt_stat",
    "nanoagent_command",
    "paired_ratios",
    "python_command",
    "timed",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    """Sizes of every section. ``full()`` is what the issue asks for; ``quick()`` is a smoke
    check of a few seconds per section; ``tiny()`` is for the unit test."""

    repeats: int = 5
    # 1. step cost
    short_run_tasks: int = 50  #: tasks per run in the headline (the demo's size)
    short_runs: int = 20  #: runs per sample
    long_run_tasks: int = 2000  #: one long run per sample, to show how cost grows with length
    floor_steps: int = 2000
    # 2. concurrency
    procs: int = 16
    tasks_per_proc: int = 500
    conc_repeats: int = 5
    # 3. live latency
    live_events: int = 200
    live_interval: float = 0.02  #: seconds between the writer's commits
    live_diagnostic: bool = True  #: also measure with a shorter poll interval
    live_passes: int = 5  #: passes per configuration; figures are medians over them
    # 4. scale: (runs, events) per database
    scale_sizes: tuple[tuple[int, int], ...] = ((10_000, 100_000), (100_000, 1_000_000))
    poll_samples: int = 50
    list_repeats: int = 5
    screen_repeats: int = 10  #: dashboard rounds: one app per database per round
    # 5. crash and resume
    crash_repeats: int = 5
    # 6. peers (LangGraph, DBOS; the bench dependency group)
    peer_tasks: int = 2000  #: tasks of the one run per trial
    peer_trials: int = 5
    # PostgreSQL (sections 1-3): the server, or None to leave it out
    pg_url: str | None = field(default_factory=default_url)
    pg_conc_repeats: int = 2  #: samples of 16 x 500 on PostgreSQL (each ~25 s here)
    label: str = "full"

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return replace(
            cls(),
            short_runs=5,
            long_run_tasks=300,
            floor_steps=500,
            procs=4,
            tasks_per_proc=100,
            conc_repeats=3,
            live_events=40,
            live_passes=3,
            scale_sizes=((1_000, 10_000), (10_000, 100_000)),
            poll_samples=20,
            list_repeats=3,
            screen_repeats=3,
            crash_repeats=3,
            peer_tasks=300,
            peer_trials=3,
            pg_conc_repeats=1,
            label="quick",
        )

    @classmethod
    def tiny(cls) -> Config:
        return replace(
            cls.quick(),
            repeats=2,
            short_run_tasks=10,
            short_runs=2,
            long_run_tasks=60,
            floor_steps=100,
            procs=2,
            tasks_per_proc=20,
            conc_repeats=1,
            live_events=10,
            live_passes=1,
            live_diagnostic=False,
            scale_sizes=((200, 1_000), (1_000, 10_000)),
            poll_samples=5,
            list_repeats=1,
            screen_repeats=1,
            crash_repeats=1,
            peer_tasks=20,
            peer_trials=1,
            pg_conc_repeats=1,
            label="tiny",
        )


@dataclass(frozen=True)
class Stat:
    """The median of several measurements, with their min and max."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        got = tuple(float(v) for v in values)
        if not got:
            raise ValueError("no measurements")
        return cls(got)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def n(self) -> int:
        return len(self.values)

    def scaled(self, factor: float) -> Stat:
        return Stat(tuple(v * factor for v in self.values))

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile (q in 0..1) of the values."""
        ordered = sorted(self.values)
        rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
        return ordered[rank - 1]


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Stat:
    """Ratios of measurements taken in pairs (interleaved), so that a noisy moment hits both."""
    return Stat.of(a / b for a, b in zip(numerators, denominators, strict=True) if b)


@dataclass(frozen=True)
class Figure:
    """One row of a side-by-side table."""

    key: str
    what: str
    unit: str
    flat: bool = False  #: must not grow with the database


@dataclass(frozen=True)
class Goal:
    what: str
    target: str
    measured: str
    met: bool | None  #: None: not measured
    why: str = ""


@dataclass
class SectionResult:
    title: str
    headers: list[str]
    rows: list[list[str]]
    goals: list[Goal] = field(default_factory=list[Goal])
    notes: list[str] = field(default_factory=list[str])
    seconds: float = 0.0
    data: dict[str, Stat] = field(default_factory=dict[str, Stat])  #: raw figures, for tests


def fmt(value: float) -> str:
    """A number with about three significant digits (more for big ones), thousands separated."""
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100 or magnitude == 0:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_stat(stat: Stat) -> list[str]:
    """[median, min, max] as text."""
    return [fmt(stat.median), fmt(stat.low), fmt(stat.high)]


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: this one, with the repository on the path (so
    ``python -m bench...`` works from any directory) and no inherited database location."""
    env = dict(os.environ)
    env.pop("NANOAGENT_DB", None)
    env.pop("NANOAGENT_ALLOWED_DIR", None)
    parts = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def nanoagent_command(*args: str) -> list[str]:
    """The installed ``nanoagent`` console script (what a person types), or the module."""
    script = Path(sys.executable).parent / "nanoagent"
    if script.exists():
        return [str(script), *args]
    return python_command("nanoagent_tui.cli", *args)
