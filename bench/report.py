"""The machine's description and the tables, as Markdown (printed and written to a file)."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.common import REPO_ROOT, Goal, SectionResult

__all__ = ["machine", "markdown_table", "render"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: Path) -> str:
    """The type and device of the file system holding ``path`` (fsync costs depend on it)."""
    try:
        best = ("", "unknown", "?")
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            device, point, kind = line.split()[:3]
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(
                best[0]
            ):
                best = (point, kind, device)
        return f"{best[1]} ({best[2]}, mounted on {best[0]})"
    except OSError:
        return "unknown"


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine(workdir: Path) -> list[tuple[str, str]]:
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("RAM", _ram()),
        ("OS", platform.platform()),
        ("Python", sys.version.split()[0]),
        ("SQLite", sqlite3.sqlite_version),
        (
            "pydantic / textual",
            " / ".join(_package(n) for n in ("pydantic", "textual")),
        ),
        ("database files on", _filesystem(workdir)),
        ("code", _git()),
        ("load average at start (1/5/15 min)", _load()),
    ]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        all(_looks_numeric(row[i]) for row in rows if i < len(row) and row[i]) and i > 0
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, width in enumerate(widths):
            cell = cells[i] if i < len(cells) else ""
            out.append(cell.rjust(width) if numeric[i] else cell.ljust(width))
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if numeric[i] else ("-" * (w + 2)) for i, w in enumerate(widths)
    ) + "|"  # fmt: skip
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _looks_numeric(cell: str) -> bool:
    head = cell.split(" ", maxsplit=1)[0].replace(",", "").rstrip("x%")
    try:
        float(head)
    except ValueError:
        return False
    return True


def _verdict(goal: Goal) -> str:
    if goal.met is None:
        return "pending"
    return "met" if goal.met else "MISSED"


def render(
    *,
    command: str,
    label: str,
    facts: list[tuple[str, str]],
    sections: list[SectionResult],
    total_seconds: float,
    load_after: str | None = None,
) -> str:
    parts = [
        "# nanoagent benchmarks",
        "",
        f"Written by `{command}` ({label} sizes) in {total_seconds:.0f} s. Every figure is the"
        " median of its samples, with min and max; every ratio is taken against a baseline"
        " measured in the same invocation (interleaved, pair by pair, where it says so).",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in facts),
    ]
    if load_after is not None:
        parts.append(f"- load average at end: {load_after}")
    goals = [goal for section in sections for goal in section.goals]
    if goals:
        parts += [
            "",
            "## Goals",
            "",
            markdown_table(
                ["goal", "target", "measured", "verdict", "why (figures of this run)"],
                [[g.what, g.target, g.measured, _verdict(g), g.why] for g in goals],
            ),
        ]
    for section in sections:
        parts += ["", f"## {section.title}", ""]
        if section.rows:
            parts.append(markdown_table(section.headers, section.rows))
        if section.notes:
            parts.append("")
            parts += [f"- {note}" for note in section.notes]
        parts.append("")
        parts.append(f"_Section time: {section.seconds:.1f} s._")
    return "\n".join(parts) + "\n"
