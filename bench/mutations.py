"""Mutation check: does the suite catch the bugs that would break the core promises?

    uv run python -m bench.mutations            # every mutation
    uv run python -m bench.mutations -k fence   # those whose name contains "fence"
    uv run python -m bench.mutations --list

Each mutation is a small edit of the product code (a fence dropped, a check skipped). The
working tree is never touched: it is copied (tracked and untracked-but-not-ignored files) to a
temporary directory that gets its own virtual environment (``uv sync --frozen``), so the
``nanoagent`` command and every worker process the tests start run the mutated copy. For each
mutation the copy's file is edited, the tests named for it run there (``pytest -x``), and the
file is restored. A mutation is *caught* when those tests fail, *survived* when they pass.
The PostgreSQL mutations run only with ``NANOAGENT_TEST_POSTGRES`` set.

Exit status 0 when every mutation that ran was caught, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    #: (file, text, replacement): each text must occur exactly once in its file
    edits: tuple[tuple[str, str, str], ...]
    tests: tuple[str, ...]
    postgres: bool = False


SQLITE_SQL = "nanoagent_core/sqlite/sql.py"
SQLITE_STORE = "nanoagent_core/sqlite/store.py"
PG_SQL = "nanoagent_core/postgres/sql.py"
LOOP = "nanoagent_core/loop.py"
WORKER = "nanoagent_core/worker.py"

STATEMENT_FENCE = (
    SQLITE_SQL,
    '    f" WHERE run_id = :run_id AND epoch = :epoch RETURNING {RUN_COLUMNS}"',
    '    f" WHERE run_id = :run_id RETURNING {RUN_COLUMNS}"',
)

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "no claim compare-and-set (SQLite)",
        ((SQLITE_SQL, " AND epoch = :expected_epoch AND status != 'completed'",
          " AND status != 'completed'"),),
        ("tests/store/test_store_sqlite_processes.py::test_claim_race_has_exactly_one_winner",),
    ),
    Mutation(
        "no claim compare-and-set (PostgreSQL)",
        ((PG_SQL, " AND epoch = %(expected_epoch)s AND status <> 'completed'",
          " AND status <> 'completed'"),),
        ("tests/postgres/test_pg_processes.py"
         "::test_claim_race_between_processes_has_exactly_one_winner",),
        postgres=True,
    ),
    Mutation(
        # the step's one fence: FINISH_STEP runs first, under the write lock (issue 15 item 7)
        "no epoch fence in a step (SQLite FINISH_STEP)",
        (STATEMENT_FENCE,),
        ("tests/store/test_store_contract.py", "tests/store/test_trust_fences.py"),
    ),
    Mutation(
        "in-flight task re-run under the same attempt",
        ((LOOP, "        if restart:\n", "        if False:\n"),),
        ("tests/loop/test_crash_recovery.py::"
         "test_kill_in_every_body_then_resume_runs_it_again_under_the_next_attempt",),
    ),
    Mutation(
        "idempotency key without the attempt number",
        ((LOOP, 'key = f"{run.run_id}:{task.id}:{task.attempts}"',
          'key = f"{run.run_id}:{task.id}:1"'),),
        ("tests/loop/test_crash_recovery.py::"
         "test_kill_in_every_body_then_resume_runs_it_again_under_the_next_attempt",),
    ),
    Mutation(
        "crashed never shown",
        (("nanoagent_core/status.py", "    if owner_gone(run, now):\n        return ShownStatus",
          "    if False:\n        return ShownStatus"),),
        ("tests/loop/test_worker_processes.py::test_sigkilled_worker_shows_as_crashed",),
    ),
    Mutation(
        "no event in a step (SQLite commit_step)",
        ((SQLITE_STORE, "            if events:\n                conn.executemany(sql.INSERT_EVENT",
          "            if False:\n                conn.executemany(sql.INSERT_EVENT"),),
        ("tests/store/test_store_contract.py",),
    ),
    Mutation(
        "a paths guard that allows everything",
        (("nanoagent_core/paths.py",
          "    _plain_path(location, what)\n    if allowed_dir is None:\n        return location",
          "    _plain_path(location, what)\n    if True:\n        return location"),),
        ("tests/store/test_store_sqlite_files.py::test_allowed_dir_guard",),
    ),
    Mutation(
        "lease renewal not fenced by the epoch (SQLite)",
        ((SQLITE_SQL, "    \" WHERE run_id = :run_id AND epoch = :epoch AND status = 'running'\"",
          "    \" WHERE run_id = :run_id AND status = 'running'\""),),
        ("tests/store/test_store_contract.py",
         "tests/loop/test_worker_processes.py"
         "::test_worker_frozen_past_its_lease_writes_nothing_after_takeover"),
    ),
    Mutation(
        "abort request ignored by the worker",
        ((LOOP, "            if self._run.abort_requested_at is not None:\n",
          "            if False:\n"),
         (WORKER, "        if run.abort_requested_at is not None:\n            stop(_Stop.ABORT)",
          "        if False:\n            stop(_Stop.ABORT)")),
        ("tests/loop/test_worker_processes.py::test_abort_of_a_running_run_stops_the_body_in_flight",),
    ),
    Mutation(
        "event log read skips nothing but repeats the last id (SQLite)",
        ((SQLITE_SQL, 'SELECT_EVENTS = "SELECT id, run_id, ts, kind, data FROM events WHERE id > ?',
          'SELECT_EVENTS = "SELECT id, run_id, ts, kind, data FROM events WHERE id >= ?'),),
        ("tests/store/test_store_contract.py",),
    ),
    Mutation(
        "claim ignores a live lease (SQLite)",
        ((SQLITE_SQL, "status != 'running' OR owner_pid IS NULL OR lease_expires_at IS NULL\"\n"
          "    \"      OR lease_expires_at <= :now OR :owner_gone)",
          "status != 'running' OR owner_pid IS NULL OR lease_expires_at IS NULL\"\n"
          "    \"      OR 1 OR :owner_gone)"),),
        ("tests/store/test_store_contract.py",),
    ),
    Mutation(
        "planner and reflector calls not journaled",
        (("nanoagent_core/partcall.py", "        return replace(step, calls=entry)\n",
          "        return step\n"),),
        ("tests/agents/test_role_journal.py",),
    ),
    Mutation(
        "the plan and the reflections run without the run's remaining budget",
        (("nanoagent_core/partcall.py", "        with limits_for_body(limits):\n",
          "        with limits_for_body(None):\n"),),
        ("tests/agents/test_role_journal.py::"
         "test_a_budget_smaller_than_the_plan_pauses_there_and_a_raised_one_completes",),
    ),
)  # fmt: skip


def copy_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def apply(tree: Path, mutation: Mutation) -> dict[Path, str]:
    """Edit the copy; return the original text of each file edited."""
    originals: dict[Path, str] = {}
    for name, old, new in mutation.edits:
        path = tree / name
        originals.setdefault(path, path.read_text())
        current = path.read_text()
        count = current.count(old)
        if count != 1:
            restore(originals)
            raise LookupError(f"{mutation.name}: {old!r} occurs {count} times in {name}")
        path.write_text(current.replace(old, new))
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    python = tree / ".venv" / "bin" / "python"
    try:
        done = subprocess.run(
            # serially (-n 0): under xdist a -x stop reports "interrupted" (exit 2), not 1
            [str(python), "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:randomly", *tests],
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutations", description=__doc__)
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation")
    parser.add_argument("--keep", action="store_true", help="keep the copied tree")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k.lower() in m.name.lower()]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {', '.join(m.tests)}")
        return 0
    with_pg = bool(os.environ.get("NANOAGENT_TEST_POSTGRES"))
    base = Path(tempfile.mkdtemp(prefix="nanoagent-mutants-"))
    tree = base / "tree"
    rows: list[tuple[str, str, str, float]] = []
    try:
        copy_tree(tree)
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        subprocess.run(["uv", "sync", "--frozen", "-q"], cwd=tree, check=True, env=env)
        for mutation in chosen:
            if mutation.postgres and not with_pg:
                rows.append((mutation.name, "skipped", "no NANOAGENT_TEST_POSTGRES", 0.0))
                continue
            originals = apply(tree, mutation)
            began = time.monotonic()
            try:
                code, last = run_tests(tree, mutation.tests, args.timeout)
            finally:
                restore(originals)
            verdict = "survived" if code == 0 else "caught"
            if code not in (0, 1):
                verdict = f"caught? (pytest exit {code})"
            rows.append((mutation.name, verdict, last, time.monotonic() - began))
            print(f"{verdict:>8}  {mutation.name}  ({last})", flush=True)
    finally:
        if args.keep:
            print(f"copy kept in {tree}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print("| mutation | verdict | tests' last line | s |")
    print("|---|---|---|---|")
    for name, verdict, last, seconds in rows:
        print(f"| {name} | {verdict} | {last} | {seconds:.0f} |")
    return 0 if all(v in ("caught", "skipped") for _, v, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
