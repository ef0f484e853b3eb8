"""A queued run as people see it: its shown status, the list filter, and the dashboard's
answer to ``r`` (resume) on it."""

from __future__ import annotations

from datetime import UTC, datetime

from nanoagent_core.actions import new_run
from nanoagent_core.models import RunStatus
from nanoagent_core.status import ShownStatus, shown_status, stored_statuses
from nanoagent_tui.operations import why_not_abortable, why_not_resumable

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_queued_run_shows_queued_and_the_filter_finds_it() -> None:
    run = new_run("q1", "g").model_copy(
        update={"status": RunStatus.QUEUED, "lease_expires_at": None}
    )
    assert shown_status(run, NOW) is ShownStatus.QUEUED  # never "crashed": nobody holds it
    assert stored_statuses("queued") == [RunStatus.QUEUED]
    assert not RunStatus.QUEUED.finished


def test_r_on_a_queued_run_says_a_pool_worker_takes_it_and_abort_is_allowed() -> None:
    run = new_run("q1", "g").model_copy(
        update={"status": RunStatus.QUEUED, "lease_expires_at": None}
    )
    assert why_not_resumable(run, NOW) == (
        "q1 is queued: a pool worker ('nanoagent worker') takes it up"
    )
    assert why_not_abortable(run, NOW) is None
