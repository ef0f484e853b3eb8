"""kill -9 of real worker processes on a real SQLite file, then resume.

(a) At every checkpoint position: the worker SIGKILLs itself right after its k-th commit
    (the NANOAGENT_FAULT_KILL_AFTER_COMMIT test fault injector), for every k of a clean run.
(b) At random instants: SIGKILL of a ``nanoagent run`` process after a random delay.

Each resumed run must end with the same ``show --json`` tasks (all fields but attempts, which
may be higher), results and result as an uninterrupted run of the same goal and options, and
the demo agent's body-start journal must show that no task whose outcome committed ran
again (see loopkit.check_journal).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from loopkit import (
    JSONDoc,
    acli,
    acli_here,
    ashow_json,
    assert_same_final,
    attempts_by_task,
    check_journal,
    clean_env,
    cli_here,
    commit_count,
    gather_all,
    kill_child,
    option_args,
    read_journal,
    show_json,
    start_cli,
)

from nanoagent_core.sqlite import SQLiteStore
from nanoagent_core.worker import FAULT_KILL_AFTER_COMMIT, FAULT_KILL_IN_BODY, resume_run

GOAL = "Recover from every crash"
KILLED = -signal.SIGKILL
SEED_VARIABLE = "NANOAGENT_TEST_SEED"

#: name -> (demo options, max iterations). "retries": two tasks fail their first attempt,
#: three reflections, ends when reflection says done. "cut-short": ends at max_iterations.
CONFIGS: dict[str, tuple[dict[str, str], int]] = {
    "retries": ({"tasks": "4", "followups": "2", "fail": "2,5", "delay": "0.02"}, 50),
    "cut-short": ({"tasks": "5", "followups": "1", "delay": "0.02"}, 4),
}


def run_args(
    db: str, run_id: str, options: Mapping[str, str], max_iterations: int, log: Path
) -> list[str]:
    return [
        "run",
        GOAL,
        "--db",
        db,
        "--run-id",
        run_id,
        "--max-iterations",
        str(max_iterations),
        *option_args({**options, "log": str(log)}),
    ]


def check_clean(doc: JSONDoc, log: Path) -> None:
    """The premises of a clean run: it completed, and (it never crashed) started each
    attempt's body once, and nothing else."""
    assert doc["status"] == "completed"
    starts = read_journal(log, doc["run_id"])
    check_journal(doc, starts, "clean run")
    assert sorted(starts) == sorted(
        (task["id"], attempt) for task in doc["tasks"] for attempt in range(1, task["attempts"] + 1)
    )


@dataclass(frozen=True)
class Clean:
    """An uninterrupted run of a config, and its body starts: what every trial of that
    config is compared with (the same whichever database the trial runs in)."""

    doc: JSONDoc
    bodies: list[tuple[str, int]]


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Clean]:
    """The clean run of each config, made once per module (in this process: what it proves
    is the run's outcome, not anything about a process) and only read by the tests."""
    made: dict[str, Clean] = {}

    def clean(config: str) -> Clean:
        if config not in made:
            options, max_iterations = CONFIGS[config]
            where = tmp_path_factory.mktemp(f"clean-{config}")
            db, log = str(where / "runs.db"), where / "clean.log"
            home = where / "home"
            home.mkdir()
            env = clean_env(HOME=str(home), XDG_DATA_HOME=str(where / "xdg"))
            result = cli_here(*run_args(db, "clean", options, max_iterations, log), env=env)
            assert result.code == 0, result
            doc = show_json(db, "clean")
            check_clean(doc, log)
            made[config] = Clean(doc, read_journal(log, "clean"))
        return made[config]

    return clean


async def resume(db: str, run_id: str, env: dict[str, str], *, process: bool) -> None:
    """``nanoagent resume RUN_ID``: in a process of its own when ``process``, else the same
    command in this process."""
    resumed = await (acli if process else acli_here)("resume", run_id, "--db", db, env=env)
    assert resumed.code == 0, (run_id, resumed)


# -- (a) every checkpoint position -------------------------------------------------------------


@pytest.mark.parametrize("config", sorted(CONFIGS))
async def test_kill_after_every_commit_then_resume_matches_a_clean_run(
    db: str, tmp_path: Path, env: dict[str, str], config: str, clean_runs: Callable[[str], Clean]
) -> None:
    options, max_iterations = CONFIGS[config]
    clean = clean_runs(config).doc
    positions = commit_count(clean)
    assert positions >= 6

    async def trial(k: int) -> None:
        run_id, log = f"kill-after-{k}", tmp_path / f"k{k}.log"
        faulty = {**env, FAULT_KILL_AFTER_COMMIT: str(k)}
        killed = await acli(*run_args(db, run_id, options, max_iterations, log), env=faulty)
        assert killed.code == KILLED, (k, killed)
        crashed = await ashow_json(db, run_id)
        # it died right after its k-th commit: exactly k commits are in the database
        assert commit_count(crashed) == k, k
        assert crashed["status"] == ("completed" if k == positions else "crashed"), k

        # the first resume in a process of its own, as after a real crash; the rest here
        await resume(db, run_id, env, process=k == 1)
        doc = await ashow_json(db, run_id)
        assert_same_final(doc, clean, f"killed after commit {k}", crashed=crashed)
        check_journal(doc, read_journal(log, run_id), f"killed after commit {k}")
        claims = [e for e in doc["events"] if e["kind"] == "run_claimed"]
        assert len(claims) == (1 if k == positions else 2), k

    gate = asyncio.Semaphore(3)

    async def gated(k: int) -> None:
        async with gate:
            await trial(k)

    await gather_all(*(gated(k) for k in range(1, positions + 1)))


# -- (a') in the middle of every body ---------------------------------------------------------


@pytest.mark.parametrize("config", sorted(CONFIGS))
async def test_kill_in_every_body_then_resume_runs_it_again_under_the_next_attempt(
    db: str, tmp_path: Path, env: dict[str, str], config: str, clean_runs: Callable[[str], Clean]
) -> None:
    """SIGKILL while the k-th body runs (its start is journalled, its outcome not committed),
    for every body of a clean run; the resumed worker must start that task again under the
    next attempt number, so with the next idempotency key (``run:task:n+1``), before any
    other body, and end like the clean run with exactly one more attempt on that task."""
    options, max_iterations = CONFIGS[config]
    clean, bodies = clean_runs(config).doc, clean_runs(config).bodies
    assert len(bodies) >= 4

    async def trial(k: int) -> None:
        run_id, log = f"kill-in-{k}", tmp_path / f"b{k}.log"
        faulty = {**env, FAULT_KILL_IN_BODY: str(k)}
        killed = await acli(*run_args(db, run_id, options, max_iterations, log), env=faulty)
        assert killed.code == KILLED, (k, killed)
        crashed = await ashow_json(db, run_id)
        before = read_journal(log, run_id)
        # the same bodies as the clean run, up to the k-th, which was cut short
        assert before == bodies[:k], k
        task_id, attempt = before[-1]
        assert crashed["status"] == "crashed", k
        assert (crashed["phase"], crashed["current_task_id"]) == ("executing", task_id), k
        in_flight = next(t for t in crashed["tasks"] if t["id"] == task_id)
        assert (in_flight["status"], in_flight["attempts"]) == ("pending", attempt), k

        await resume(db, run_id, env, process=k == 1)
        doc = await ashow_json(db, run_id)
        keys = [line for line in log.read_text().splitlines() if line.startswith(f"{run_id}:")]
        # the first body after the resume: the same task, the next attempt, the next key
        assert keys[k] == f"{run_id}:{task_id}:{attempt + 1}", (k, keys)
        restarts = [
            e["data"]
            for e in doc["events"]
            if e["kind"] == "task_started" and e["data"].get("resumed")
        ]
        assert [(r["task_id"], r["attempt"]) for r in restarts] == [(task_id, attempt + 1)], k
        expected = attempts_by_task(clean)
        expected[task_id] = max(expected[task_id], attempt + 1)
        assert attempts_by_task(doc) == expected, k
        assert_same_final(doc, clean, f"killed in body {k}", crashed=crashed)
        check_journal(doc, read_journal(log, run_id), f"killed in body {k}")

    gate = asyncio.Semaphore(3)

    async def gated(k: int) -> None:
        async with gate:
            await trial(k)

    await gather_all(*(gated(k) for k in range(1, len(bodies) + 1)))


# -- (b) random instants -----------------------------------------------------------------------


RANDOM_OPTIONS = {"tasks": "4", "followups": "2", "fail": "3", "delay": "0.03"}


async def random_kills(
    db: str, tmp_path: Path, env: dict[str, str], *, kills: int, lanes: int, seed: int
) -> None:
    """Run ``kills`` trials, each a SIGKILL at a random instant of a run, and check each: a
    kill that landed mid-run must resume to the clean run's end, exact attempts included."""
    rng = random.Random(seed)
    # the clean run, whose process also gives the window of instants: from the run being
    # stored to the end of the process
    clean_log = tmp_path / "clean.log"
    timed = await start_cli(*run_args(db, "clean", RANDOM_OPTIONS, 50, clean_log), env=env)
    assert timed.stdout is not None
    await asyncio.wait_for(timed.stdout.readline(), 30)
    began = time.monotonic()
    await timed.communicate()
    window = time.monotonic() - began
    assert timed.returncode == 0
    clean = await ashow_json(db, "clean")
    check_clean(clean, clean_log)
    landed: Counter[int] = Counter()  # mid-run kills: crash position (commits made) -> trials
    late = 0  # kills that landed after the run had completed (process still exiting)
    missed = 0  # the process had exited before the kill
    trials = 0
    store = await SQLiteStore.open(db)

    async def trial(n: int, delay: float) -> None:
        nonlocal missed, late
        run_id, log = f"rnd-{n}", tmp_path / f"rnd-{n}.log"
        proc = await start_cli(*run_args(db, run_id, RANDOM_OPTIONS, 50, log), env=env)
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert first.startswith(b"run "), first  # the run is stored: the clock starts
        await asyncio.sleep(delay)
        if proc.returncode is None:
            kill_child(proc)
        await proc.communicate()
        if proc.returncode != KILLED:
            assert proc.returncode == 0, (run_id, proc.returncode)
            missed += 1  # it had finished already: not a crash trial
            return
        crashed = await ashow_json(db, run_id)
        if crashed["status"] == "completed":
            late += 1  # still checked below, but not counted as a crash trial
        else:
            assert crashed["status"] == "crashed", (run_id, crashed["status"])
            landed[commit_count(crashed)] += 1
        if n % 4 == 0:  # some through the command (in this process), most by the API
            await resume(db, run_id, env, process=False)
        else:
            final = await resume_run(store, run_id, handle_signals=False)
            assert final.status.value == "completed", (run_id, final.error)
        doc = await ashow_json(db, run_id)
        assert_same_final(doc, clean, run_id, crashed=crashed)
        check_journal(doc, read_journal(log, run_id), run_id)

    failures: list[BaseException] = []

    async def lane() -> None:
        """Trials one after another until ``kills`` trials ran or any trial failed (the other
        lanes then finish their current trial and stop)."""
        nonlocal trials
        while not failures and trials < kills:
            trials += 1
            try:
                await trial(trials, rng.uniform(0, window))
            except BaseException as exc:
                failures.append(exc)

    try:
        await gather_all(*(lane() for _ in range(lanes)))
    finally:
        await store.close()
    spread = dict(sorted(landed.items()))
    summary = (
        f"random kills (seed {seed}; rerun with {SEED_VARIABLE}={seed}): {sum(landed.values())}"
        f" landed mid-run in {trials} trials (window {window:.2f}s; {late} after completion,"
        f" {missed} after exit); crash position -> trials: {spread}"
    )
    print("\n" + summary)
    if failures:
        # how many kills landed where depends on the machine's load; what must hold for each
        # of them does not, and the seed makes the delays of a failed run reproducible
        raise AssertionError(f"{summary}: {failures[0]!r}") from failures[0]


def seed_for_trial() -> int:
    """A fresh seed, or the one in NANOAGENT_TEST_SEED to replay a failure."""
    raw = os.environ.get(SEED_VARIABLE)
    seed = int(raw) if raw else random.randrange(2**32)
    print(f"random kills: seed {seed}")  # shown by pytest with the failure
    return seed


async def test_kill_at_random_instants_then_resume_matches_a_clean_run(
    db: str, tmp_path: Path, env: dict[str, str]
) -> None:
    await random_kills(db, tmp_path, env, kills=50, lanes=4, seed=seed_for_trial())


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_many_more_random_kills(db: str, tmp_path: Path, env: dict[str, str]) -> None:
    await random_kills(db, tmp_path, env, kills=500, lanes=4, seed=seed_for_trial())
