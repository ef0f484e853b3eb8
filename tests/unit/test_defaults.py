"""nanoagent_core.defaults: the one home of the defaults the command, form and demo share."""

from __future__ import annotations

from nanoagent_core import actions, demo, worker
from nanoagent_core.defaults import (
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_ITERATIONS,
    LEASE_BEATS,
    lease_seconds,
)


def test_the_lease_lasts_three_beats() -> None:
    assert LEASE_BEATS == 3
    assert lease_seconds(2.0) == 6.0


def test_every_user_of_a_default_takes_it_from_defaults() -> None:
    assert worker.DEFAULT_HEARTBEAT is DEFAULT_HEARTBEAT
    run = actions.new_run("r1", "a goal")
    assert run.max_iterations == DEFAULT_MAX_ITERATIONS
    assert demo.DemoRun("n", "g", {}).max_iterations == DEFAULT_MAX_ITERATIONS
