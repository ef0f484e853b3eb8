"""Bad input to this round's commands: one line on stderr, exit 2, nothing stored (review)."""

from __future__ import annotations

from pathlib import Path

from loopkit import cli, cli_here


def test_enqueue_refuses_a_database_no_worker_can_see() -> None:
    done = cli("run", "a goal", "--enqueue", "--db", ":memory:")
    assert done.code == 2, done
    assert done.out == ""
    assert done.err_lines == [
        "nanoagent: --enqueue stores the run for a pool worker: it needs a shared database,"
        " not ':memory:'"
    ]


def test_replay_as_an_empty_id_is_refused_not_ignored(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    done = cli_here("replay", "some-run", "--as", "", "--db", db)
    assert done.code == 2, done
    assert len(done.err_lines) == 1, done
    assert "invalid run id ''" in done.err, done
    assert not Path(db).exists()


def test_approve_an_empty_request_id_is_bad_input(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    made = cli_here("run", "g", "--run-id", "r1", "--option", "tasks=1", "--option", "delay=0",
               "--db", db)  # fmt: skip
    assert made.code == 0, made
    done = cli_here("approve", "r1", "--request", "", "--db", db)
    assert done.code == 2, done
    assert done.err_lines == ["nanoagent: --request takes a request id, not an empty string"]
