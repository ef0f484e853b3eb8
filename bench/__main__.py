"""``uv run python -m bench``: every section, printed as a table and written to
bench/RESULTS.md. ``--quick`` runs small sizes as a smoke check (and writes no file unless
``--out`` is given); ``--sections 1,4`` runs some sections only (``peers`` is section 6, which
needs the bench dependency group: ``uv run --group bench python -m bench --sections peers``;
without it, it is skipped with a one-line reason). Sections 1-3 also measure
PostgreSQL (``--pg URL``, default ``NANOAGENT_BENCH_PG`` or a local server; ``--pg none``
leaves it out; with no server answering, its rows say "skipped: no server")."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench import concurrency, crash, dashboard, live, peers, pg, pool, prune, scale, step_cost
from bench.common import Config, SectionResult
from bench.report import machine, render

SECTIONS: dict[str, tuple[str, Callable[[Config, Path], SectionResult]]] = {
    "1": ("1. Step cost", step_cost.run),
    "2": ("2. Concurrency", concurrency.run),
    "3": ("3. Live latency", live.run),
    "4": ("4. Scale", scale.run),
    "5": ("5. Crash detection and resume", crash.run),
    "6": ("6. Peers (LangGraph, DBOS)", peers.run),
    "7": ("7. Retention (prune)", prune.run),
    "8": ("8. Pool worker", pool.run),
}
ALIASES: dict[str, str] = {"peers": "6", "prune": "7", "pool": "8"}
ALL_SECTIONS = ",".join(SECTIONS)
#: A line in RESULTS.md after which the text is written by hand (the profile of section 1):
#: a new run keeps it.
HAND_WRITTEN = "<!-- hand-written below this line: kept when python -m bench rewrites the file -->"
DEFAULT_OUT = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument(
        "--sections", default=ALL_SECTIONS, help="which sections, e.g. 1,4 (peers: 6)"
    )
    parser.add_argument("--out", type=Path, help="where to write the Markdown table")
    parser.add_argument("--workdir", type=Path, help="where the database files go")
    parser.add_argument("--keep", action="store_true", help="keep the database files")
    parser.add_argument(
        "--pg",
        metavar="URL",
        help=f"PostgreSQL server for sections 1-3 (default {pg.DEFAULT_URL}); 'none': leave out",
    )
    args = parser.parse_args(argv)
    cfg = Config.quick() if args.quick else Config.full()
    if args.pg is not None:
        cfg = replace(cfg, pg_url=None if args.pg.strip().lower() in ("", "none") else args.pg)
    named: list[str] = [part.strip() for part in args.sections.split(",") if part.strip()]
    chosen = [ALIASES.get(part, part) for part in named]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r} (known: {', '.join(SECTIONS)})")
    out: Path | None = args.out if args.out else (None if args.quick else DEFAULT_OUT)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nanoagent-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    facts = machine(workdir)
    facts.append(("PostgreSQL", pg.server_facts(cfg.pg_url)))
    if "6" in chosen:
        facts.append(("peers: " + " / ".join(peers.DISTRIBUTIONS), peers.versions()))
    results: list[SectionResult] = []
    failed = 0
    try:
        for key in chosen:
            name, section = SECTIONS[key]
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            dashboard.TEARDOWN_ERRORS.clear()
            try:
                result = section(cfg, workdir / f"section{key}")
                result.notes += dashboard.teardown_note()
            except Exception as exc:
                failed += 1
                traceback.print_exc()
                result = SectionResult(
                    title=f"{name}: FAILED",
                    headers=[],
                    rows=[],
                    notes=[f"{type(exc).__name__}: {exc}"],
                    seconds=time.perf_counter() - started,
                )
            results.append(result)
            print(f"   {result.seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    group = " --group bench" if "6" in chosen and peers.missing() is None else ""
    command = f"uv run{group} python -m bench" + (" --quick" if args.quick else "")
    if args.sections != ALL_SECTIONS:
        command += f" --sections {args.sections}"
    if args.pg is not None:
        command += f" --pg {pg.shown(args.pg)}"
    text = render(
        command=command,
        label=cfg.label,
        facts=facts,
        sections=results,
        total_seconds=time.perf_counter() - began,
        load_after=f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
    )
    print(text)
    if out is not None:
        kept = ""
        if out.exists():
            old = out.read_text(encoding="utf-8")
            if HAND_WRITTEN in old:
                kept = "\n" + HAND_WRITTEN + old.split(HAND_WRITTEN, 1)[1]
        out.write_text(text + kept, encoding="utf-8")
        print(f"written to {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
