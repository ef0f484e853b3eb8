"""nanoagent_core.status.stored_statuses: one map from a shown status to stored ones."""

from __future__ import annotations

import pytest

from nanoagent_core.models import RunStatus
from nanoagent_core.status import ShownStatus, stored_statuses


@pytest.mark.parametrize("shown", ["running", "crashed", "aborting"])
def test_live_looking_words_are_stored_running(shown: str) -> None:
    assert stored_statuses(shown) == [RunStatus.RUNNING]


@pytest.mark.parametrize("shown", [None, "damaged"])
def test_no_filter_and_damaged_read_every_stored_status(shown: str | None) -> None:
    assert stored_statuses(shown) is None


def test_finished_words_are_their_stored_status() -> None:
    for shown in ("interrupted", "completed", "failed", "aborted"):
        assert stored_statuses(ShownStatus(shown)) == [RunStatus(shown)]


def test_every_shown_status_maps() -> None:
    for shown in ShownStatus:
        stored_statuses(shown)  # no ValueError
