"""``nanoagent prune`` through the real command: bad input is one line and exit 2 with nothing
written; what it prints; and a real worker keeps driving its run while prune deletes
finished runs beside it in one-run transactions (its run and events untouched)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from loopkit import (
    acli,
    acli_here,
    gather_all,
    kill_child,
    option_args,
    read_run,
    start_cli,
    wait_until,
)
from storekit import OWNER, file_digest, new_run, task

from nanoagent_core.models import Phase, RunState, RunStatus
from nanoagent_core.protocols import NewEvent, Step
from nanoagent_core.sqlite import SQLiteStore


async def finished_runs(db: str, count: int, prefix: str = "done") -> list[str]:
    """``count`` completed runs with two tasks, a result and events each."""
    store = await SQLiteStore.open(db)
    ids = [f"{prefix}-{i:03d}" for i in range(count)]
    try:
        for run_id in ids:
            await store.create_run(new_run(run_id))
            run = await store.claim_run(run_id, OWNER, expected_epoch=0, lease_seconds=30)
            step = Step(
                phase=Phase.DONE,
                iteration=1,
                tasks=(task("a"), task("b")),
                results={"a": "ok"},
                events=(NewEvent(kind="note", data={"i": run_id}),),
                status=RunStatus.COMPLETED,
            )
            await store.commit_step(run_id, step, epoch=run.epoch)
    finally:
        await store.close()
    return ids


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--older-than", "5x"], "--older-than: takes a duration"),
        (["--status", "running"], "--status: prune deletes finished runs only"),
        (["--status", "completed,crashed"], "not 'crashed'"),
        (["--keep-last", "-1"], "--keep-last: takes a whole number"),
        (["--older-than", ""], "--older-than: takes a duration"),
    ],
)
async def test_bad_input_one_line_exit_2_nothing_written(
    db: str, env: dict[str, str], args: list[str], says: str
) -> None:
    await finished_runs(db, 2)
    before = file_digest(Path(db))
    # the first row through the console script in a process of its own, the rest here
    run = acli if args == ["--older-than", "5x"] else acli_here
    result = await run("prune", "--older-than", "0s", *args, "--db", db, env=env)
    assert result.code == 2, result
    assert len(result.err_lines) == 1, result
    assert says in result.err
    assert "Traceback" not in result.err
    assert result.out == ""
    assert file_digest(Path(db)) == before


async def test_prune_prints_what_it_removed_and_freed(db: str, env: dict[str, str]) -> None:
    await finished_runs(db, 5)
    young = await acli_here("prune", "--db", db, env=env)  # default: older than 30 days
    assert young.code == 0, young
    nothing = "pruned 0 runs (0 tasks, 0 events) in 0 batches of at most 500"
    assert young.out.splitlines()[0] == nothing

    dry = await acli_here("prune", "--older-than", "0s", "--dry-run", "--db", db, env=env)
    assert dry.code == 0, dry
    # done-004 holds the newest event: it stays (SQLite would hand its ids out again)
    assert dry.out == "would prune 4 runs (8 tasks, 12 events); nothing deleted (dry run)\n"
    assert (await read_run(db, "done-000")).status is RunStatus.COMPLETED

    kept = await acli_here(
        "prune", "--older-than", "0s", "--keep-last", "2", "--batch", "1", "--db", db, env=env
    )
    assert kept.code == 0, kept
    lines = kept.out.splitlines()
    assert lines[0] == "pruned 3 runs (6 tasks, 9 events) in 3 batches of at most 1"
    assert lines[1] == "space: free pages returned by incremental vacuum"
    sizes = re.fullmatch(
        r"file: ([\d,]+) bytes before, ([\d,]+) after \(database and WAL\)", lines[2]
    )
    assert sizes is not None, lines
    assert kept.err == ""
    listed = await acli_here("list", "--json", "--db", db, env=env)
    assert sorted(re.findall(r'"run_id": "([^"]+)"', listed.out)) == ["done-003", "done-004"]


async def test_a_worker_keeps_running_while_prune_deletes(db: str, env: dict[str, str]) -> None:
    pruned = await finished_runs(db, 30)
    # 50 bodies of 3 s: the run cannot finish while the test looks at it, however loaded
    options = {"tasks": "50", "followups": "0", "delay": "3"}
    worker = await start_cli(
        "run", "keep going", "--run-id", "live-run", "--db", db, *option_args(options), env=env
    )
    try:

        async def probe() -> RunState | None:
            store = await SQLiteStore.open(db, read_only=True)
            try:
                found = await store.get_runs(["live-run"])
            finally:
                await store.close()
            return found[0] if found else None

        await wait_until(
            probe, lambda r: r is not None and r.tasks_done >= 1, timeout=60, what="a task done"
        )
        store = await SQLiteStore.open(db, read_only=True)
        try:
            events_before = await store.read_events(run_id="live-run", limit=100_000)
            result = await acli_here(
                "prune", "--older-than", "0s", "--batch", "1", "--db", db, env=env
            )
            assert result.code == 0, result
            assert result.out.startswith("pruned 30 runs (60 tasks, 90 events) in 30 batches")
            during = await store.get_run("live-run")
            # The worker was still driving its run when prune ended, and went on after it.
            assert during.status is RunStatus.RUNNING
            assert during.owner is not None
            assert during.owner.pid == worker.pid
            events_after = await store.read_events(run_id="live-run", limit=100_000)
            assert events_after[: len(events_before)] == events_before
            for run_id in pruned:
                assert await store.get_runs([run_id]) == []
        finally:
            await store.close()
        done = await wait_until(
            probe,
            lambda r: r is not None and r.tasks_done > during.tasks_done,
            timeout=60,
            what="more progress",
        )
        assert done is not None
        abort = await acli_here("abort", "live-run", "--db", db, env=env)
        code = await worker.wait()
        assert abort.code == 0, abort
        assert code in (0, 5), code
        final = await read_run(db, "live-run")
        assert final.tasks_total == 50
    finally:
        kill_child(worker)
        await gather_all(worker.wait())
