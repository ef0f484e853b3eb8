"""Section 1's step cost, before and after a change, in one invocation.

``uv run python -m bench.ab_step --before REV`` extracts commit REV of this repository
(``git archive``) into a temporary directory and runs the same measurement on it and on this
working tree, alternating tree by tree, round after round, each in a fresh process of this
environment's interpreter (the extracted tree's packages come first on its path). A process
measures, in ``--chunks`` alternations: the plain-sqlite3 floor (1,000 steps), section 1's loop
(``--runs`` runs of 50 no-op tasks) and, with ``--journal``, the same loop journaling each
outcome. Every ratio pairs a loop with the floor measured in the same process, so the machine's
load (other jobs on the 2 cores) cancels as far as it can; the after/before ratio pairs the
two trees' processes of the same round. Each figure is given in wall time (what the goals
count) and in the process's CPU time (what the code costs, far less moved by other jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: run in a child process with the tree under test as its working directory: uses only what
#: both trees have (bench.step_cost's floor and loop sample)
CHILD = """
import asyncio, json, sys, time
from pathlib import Path
import nanoagent_core
from bench.step_cost import floor_steps_per_s, loop_sample
sync, work, chunks, runs, journal = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), sys.argv[5] == "1"
FLOOR = 3000
got = {"floor": [0.0, 0.0, 0], "loop": [0.0, 0.0, 0], "journal": [0.0, 0.0, 0]}
tasks = 0
def add(key, wall, cpu, commits):
    got[key][0] += wall
    got[key][1] += cpu
    got[key][2] += commits
for i in range(chunks):
    cpu = time.process_time()
    rate = floor_steps_per_s(work / f"f{i}.db", sync, FLOOR)
    add("floor", FLOOR / rate, time.process_time() - cpu, FLOOR)
    cpu = time.process_time()
    sample = asyncio.run(loop_sample(work / f"l{i}.db", sync, 50, runs))
    add("loop", sample.seconds, time.process_time() - cpu, sample.steps)
    tasks += sample.tasks
    if journal:
        cpu = time.process_time()
        sample = asyncio.run(loop_sample(work / f"j{i}.db", sync, 50, runs, journal=True))
        add("journal", sample.seconds, time.process_time() - cpu, sample.steps)
out = {"code": nanoagent_core.__file__, "tasks_per_commit": tasks / got["loop"][2]}
for key, (wall, cpu, n) in got.items():
    if n:
        out[key] = {"us_wall": 1e6 * wall / n, "us_cpu": 1e6 * cpu / n}
print(json.dumps(out))
"""


def _extract(rev: str, into: Path) -> Path:
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=out, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _child(tree: Path, sync: str, chunks: int, runs: int, journal: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nanoagent-ab-") as work:
        args = [sys.executable, "-c", CHILD, sync, work, str(chunks), str(runs)]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            [*args, "1" if journal else "0"],
            check=False,
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise SystemExit(f"child in {tree} failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not str(out["code"]).startswith(str(tree)):
        raise SystemExit(f"child in {tree} imported {out['code']}")
    return out


def _cell(values: Sequence[float], digits: int = 3) -> str:
    return (
        f"{statistics.median(values):.{digits}g}"
        f" ({min(values):.{digits}g}-{max(values):.{digits}g})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab_step", description=__doc__)
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--sync", default="NORMAL", choices=["NORMAL", "FULL"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5, help="runs of 50 tasks per chunk")
    parser.add_argument("--journal", action="store_true", help="also the journaled loop")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nanoagent-ab-tree-") as tmp:
        trees = {"before": _extract(args.before, Path(tmp)), "after": ROOT}
        got: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for name in order:
                got[name].append(
                    _child(trees[name], args.sync, args.chunks, args.runs, args.journal)
                )
            print(
                f"round {round_ + 1}: "
                + ", ".join(
                    f"{n} {got[n][-1]['loop']['us_wall']:.0f} us/commit vs floor"
                    f" {got[n][-1]['floor']['us_wall']:.0f} us/step"
                    for n in order
                ),
                flush=True,
            )
    print(f"synchronous {args.sync}; {args.rounds} rounds; median (min-max) over the rounds")
    for name in ("before", "after"):
        rows = got[name]
        for clock in ("wall", "cpu"):
            floor = [r["floor"][f"us_{clock}"] for r in rows]
            loop = [r["loop"][f"us_{clock}"] for r in rows]
            # loop tasks/s over floor steps/s = floor us/step x tasks/commit / loop us/commit
            per = [r["tasks_per_commit"] for r in rows]
            ratio = [f * t / c for f, t, c in zip(floor, per, loop, strict=True)]
            line = (
                f"{name:6s} {clock:4s}: floor {_cell(floor)} us/step; loop {_cell(loop)} us/commit;"
                f" loop tasks/s / floor steps/s {_cell(ratio)}"
            )
            if args.journal:
                journal = [r["journal"][f"us_{clock}"] for r in rows]
                cost = [j / c for j, c in zip(journal, loop, strict=True)]
                line += f"; journal {_cell(journal)} us/commit, with / without {_cell(cost)}"
            print(line)
    for clock in ("wall", "cpu"):
        paired = [
            b["loop"][f"us_{clock}"]
            / b["floor"][f"us_{clock}"]
            / (a["loop"][f"us_{clock}"] / a["floor"][f"us_{clock}"])
            for a, b in zip(got["after"], got["before"], strict=True)
        ]
        print(f"after / before, {clock} (ratio to the floor, paired by round): {_cell(paired)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
