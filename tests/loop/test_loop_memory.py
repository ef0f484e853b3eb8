"""The loop's semantics, in one process on the in-memory store (fast): the seed's planning,
ordering, reflection, completion and failure rules, retries and their budget, idempotency
keys, fencing of a stale worker, abort at a step boundary and during a body, a crash after
every commit followed by resume, and the demo agent's determinism."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from loopkit import ScriptedAgent

from nanoagent_core.actions import new_run
from nanoagent_core.agents.base import ExecutionResult, Reflection
from nanoagent_core.agents.registry import load_agent
from nanoagent_core.errors import LeaseLostError
from nanoagent_core.loop import Loop
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import (
    Event,
    Owner,
    Phase,
    RunState,
    RunStatus,
    Task,
    TaskStatus,
    utc_now,
)
from nanoagent_core.procinfo import current_owner
from nanoagent_core.protocols import Step
from nanoagent_core.rules import is_suspicious
from nanoagent_core.status import ShownStatus, shown_status
from nanoagent_core.worker import drive, resume_run

GOAL = "ship the release"
RUN = "r1"
#: Another worker, on another host, for stealing a run.
THIEF = Owner(host="elsewhere", pid=4242, pid_started=1.0)


async def claimed(
    store: MemoryStore, *, run_id: str = RUN, max_iterations: int = 50, agent: str = "scripted"
) -> RunState:
    await store.create_run(
        RunState(run_id=run_id, goal=GOAL, max_iterations=max_iterations, agent=agent)
    )
    return await store.claim_run(run_id, current_owner(), expected_epoch=0, lease_seconds=60)


async def run_scripted(
    store: MemoryStore, scripted: ScriptedAgent, *, max_iterations: int = 50
) -> RunState:
    run = await claimed(store, max_iterations=max_iterations)
    return await Loop(store, run, scripted.agent()).run()


async def steal(store: MemoryStore, run_id: str = RUN) -> RunState:
    run = await store.get_run(run_id)
    return await store.claim_run(
        run_id, THIEF, expected_epoch=run.epoch, lease_seconds=60, owner_gone=True
    )


async def events(store: MemoryStore, run_id: str = RUN) -> list[Event]:
    return await store.read_events(run_id=run_id, limit=100_000)


async def of_kind(store: MemoryStore, kind: str, run_id: str = RUN) -> list[Event]:
    return [event for event in await events(store, run_id) if event.kind == kind]


async def tasks_by_description(store: MemoryStore, run_id: str = RUN) -> dict[str, Task]:
    return {task.description: task for task in await store.get_all_tasks(run_id)}


async def snapshot(
    store: MemoryStore, run_id: str = RUN
) -> tuple[RunState, list[Task], dict[str, str], list[Event]]:
    run = await store.get_run(run_id)
    return (
        run,
        await store.get_all_tasks(run_id),
        await store.get_all_results(run_id),
        (await events(store, run_id)),
    )


def letters(n: int) -> list[str]:
    return [f"task {chr(ord('a') + i)}" for i in range(n)]


# -- planning and ordering -------------------------------------------------------------------


async def test_plans_once_executes_in_insertion_order_and_completes(store: MemoryStore) -> None:
    scripted = ScriptedAgent(plan=letters(4))
    final = await run_scripted(store, scripted)

    assert scripted.plans == [GOAL]
    assert scripted.executed == letters(4)
    assert (final.status, final.phase, final.iteration) == (RunStatus.COMPLETED, Phase.DONE, 5)
    assert (final.tasks_total, final.tasks_done) == (4, 4)
    tasks = await store.get_all_tasks(RUN)
    assert [t.description for t in tasks] == letters(4)
    assert all((t.status, t.priority, t.attempts) == (TaskStatus.DONE, 5, 1) for t in tasks)
    assert await store.get_all_results(RUN) == {t.id: f"result of {t.description}" for t in tasks}
    assert [e.kind for e in await events(store)] == [
        "run_created", "run_claimed", "planned",
        "task_started", "task_done", "task_started", "task_done", "task_started", "task_done",
        "reflected",
        "task_started", "task_done",
        "reflected", "run_completed",
    ]  # fmt: skip
    assert len({t.id for t in tasks}) == 4
    assert all(len(t.id) == 8 for t in tasks)


@pytest.mark.parametrize(
    ("n_tasks", "reflected_at"),
    [(1, [2]), (3, [3]), (4, [3, 5]), (6, [3, 6]), (7, [3, 6, 8]), (10, [3, 6, 9, 11])],
)
async def test_reflects_every_third_iteration_and_when_nothing_is_pending(
    store: MemoryStore, n_tasks: int, reflected_at: list[int]
) -> None:
    scripted = ScriptedAgent(plan=letters(n_tasks))
    final = await run_scripted(store, scripted)
    assert [e.data["iteration"] for e in await of_kind(store, "reflected")] == reflected_at
    # each reflection saw the tasks done so far, in insertion order, and the pending rest
    for (done, pending), at in zip(scripted.reflections, reflected_at, strict=True):
        ran = min(at, n_tasks)
        assert (done, pending) == (letters(n_tasks)[:ran], letters(n_tasks)[ran:])
    assert final.status is RunStatus.COMPLETED


async def test_highest_priority_first_ties_in_insertion_order(store: MemoryStore) -> None:
    run = await claimed(store)
    priorities = {"p3": 3, "p7 first": 7, "p5": 5, "p7 second": 7, "p1": 1, "p5 again": 5}
    tasks = tuple(
        Task(id=f"t{i}", description=d, priority=p, seq=i)
        for i, (d, p) in enumerate(priorities.items())
    )
    # a run stored at "reflecting" with its tasks already there (as a resumed run has them)
    await store.commit_step(
        RUN, Step(phase=Phase.REFLECTING, iteration=0, tasks=tasks), epoch=run.epoch
    )
    scripted = ScriptedAgent(plan=["never asked"])
    final = await Loop(store, await store.get_run(RUN), scripted.agent()).run()

    assert scripted.plans == []
    assert scripted.executed == ["p7 first", "p7 second", "p5", "p5 again", "p3", "p1"]
    assert final.status is RunStatus.COMPLETED


# -- reflection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "description",
    [
        "list files; then leave",
        "pipe it | somewhere",
        "run in background &",
        "print $HOME",
        "run `whoami`",
        "rm -rf /tmp/x",
        "RM  -f notes.txt",
        "rm -- everything",
        "DROP TABLE users",
        "please truncate   database now",
        "del table",
        "eval(payload)",
        "EXEC (script)",
    ],
)
def test_suspicious_patterns_are_recognised(description: str) -> None:
    assert is_suspicious(description)


@pytest.mark.parametrize(
    "description",
    [
        "Summarise the findings",
        "remove the draft (carefully)",
        "firm -rf estimates",
        "drop tables from the slide deck",
        "Evaluate (briefly) the options",
        "execute the plan: step two",
        "delete the old table rows",
    ],
)
def test_ordinary_descriptions_pass_the_check(description: str) -> None:
    assert not is_suspicious(description)


async def test_reflection_adds_tasks_filtered_by_the_suspicious_pattern_check(
    store: MemoryStore,
) -> None:
    offered = [
        "write the changelog",
        "rm -rf / to clean up",
        "  ",
        "tag the release",
        "DROP TABLE runs",
        "eval (anything)",
        "announce it; then curl evil",
    ]

    def reflect(n: int, done: Sequence[Task], pending: Sequence[Task]) -> Reflection:
        if n == 1:
            return Reflection(done=False, gaps=["more to do"], new_tasks=offered)
        return Reflection(done=not pending)

    scripted = ScriptedAgent(plan=["build it"], reflect_fn=reflect)
    final = await run_scripted(store, scripted)

    assert scripted.executed == ["build it", "write the changelog", "tag the release"]
    assert list(await tasks_by_description(store)) == [
        "build it",
        "write the changelog",
        "tag the release",
    ]
    first = (await of_kind(store, "reflected"))[0].data
    assert [added["description"] for added in first["added"]] == [
        "write the changelog",
        "tag the release",
    ]
    assert first["rejected"] == 4
    assert first["gaps"] == ["more to do"]
    assert final.status is RunStatus.COMPLETED


async def test_reflection_cancels_pending_tasks_and_ignores_unknown_ids(
    store: MemoryStore,
) -> None:
    asked: list[str] = []

    def reflect(n: int, done: Sequence[Task], pending: Sequence[Task]) -> Reflection:
        if n == 1:
            # task d is pending; the next id is unknown; task a is done (not pending)
            cancel = [pending[0].id, "nosuchid", done[0].id]
            asked.extend(cancel)
            return Reflection(done=False, cancel_ids=cancel)
        return Reflection(done=not pending)

    scripted = ScriptedAgent(plan=letters(5), reflect_fn=reflect)
    final = await run_scripted(store, scripted)

    tasks = await tasks_by_description(store)
    assert scripted.executed == ["task a", "task b", "task c", "task e"]
    assert tasks["task d"].status is TaskStatus.CANCELLED
    assert tasks["task d"].attempts == 0
    assert tasks["task a"].status is TaskStatus.DONE
    first = (await of_kind(store, "reflected"))[0].data
    assert first["cancelled"] == [asked[0]]
    assert first["ignored"] == asked[1:]
    assert final.status is RunStatus.COMPLETED
    assert final.result is not None
    assert final.result.startswith("Completed 4 task(s):")


async def test_completes_when_reflection_says_done_with_tasks_still_pending(
    store: MemoryStore,
) -> None:
    scripted = ScriptedAgent(plan=letters(6), reflect_fn=lambda n, d, p: Reflection(done=True))
    final = await run_scripted(store, scripted)

    assert scripted.executed == letters(3)
    assert (final.status, final.iteration, final.tasks_done) == (RunStatus.COMPLETED, 3, 3)
    tasks = await tasks_by_description(store)
    assert [t.status for t in tasks.values()] == [TaskStatus.DONE] * 3 + [TaskStatus.PENDING] * 3
    completed = (await of_kind(store, "run_completed"))[0].data
    assert completed == {"reason": "reflection", "iteration": 3, "tasks_done": 3}


@pytest.mark.parametrize(("max_iterations", "executed"), [(1, 1), (2, 2), (4, 4)])
async def test_completes_when_max_iterations_is_reached(
    store: MemoryStore, max_iterations: int, executed: int
) -> None:
    scripted = ScriptedAgent(plan=letters(10))
    final = await run_scripted(store, scripted, max_iterations=max_iterations)

    assert scripted.executed == letters(10)[:executed]
    assert (final.status, final.iteration) == (RunStatus.COMPLETED, max_iterations)
    completed = (await of_kind(store, "run_completed"))[0].data
    assert completed["reason"] == "max_iterations"
    assert final.result is not None
    assert final.result.startswith(f"Completed {executed} task(s):")


async def test_synthesized_result_format(store: MemoryStore) -> None:
    scripted = ScriptedAgent(
        plan=["short one", "long one", "exactly two hundred"],
        outcomes={
            "long one": [ExecutionResult(True, "x" * 199 + "yz" + "tail")],
            "exactly two hundred": [ExecutionResult(True, "w" * 200)],
        },
    )
    final = await run_scripted(store, scripted)

    assert final.result == (
        "Completed 3 task(s):\n"
        "1. short one\n"
        "   Result: result of short one\n"
        "2. long one\n"
        "   Result: " + "x" * 199 + "y...\n"
        "3. exactly two hundred\n"
        "   Result: " + "w" * 200
    )
    # the stored results are whole; only the synthesized text is cut
    long_one = (await tasks_by_description(store))["long one"]
    assert long_one.result == "x" * 199 + "yz" + "tail"


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", [[], ["", "   ", "\n"]])
async def test_planner_returning_nothing_fails_the_run(store: MemoryStore, plan: list[str]) -> None:
    scripted = ScriptedAgent(plan=plan)
    final = await run_scripted(store, scripted)

    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert "unable to decompose goal" in final.error
    assert scripted.calls == []
    assert await store.get_all_tasks(RUN) == []
    failed = await of_kind(store, "run_failed")
    assert len(failed) == 1
    assert "unable to decompose goal" in failed[0].data["error"]
    assert failed[0].data["phase"] == "planning"


async def test_executor_exception_and_unsuccessful_result_are_retried_attempts(
    store: MemoryStore,
) -> None:
    scripted = ScriptedAgent(
        plan=["flaky", "steady"],
        outcomes={"flaky": [RuntimeError("boom"), ExecutionResult(False, "not yet")]},
    )
    final = await run_scripted(store, scripted)

    assert final.status is RunStatus.COMPLETED
    assert scripted.executed == ["flaky", "flaky", "flaky", "steady"]
    flaky = (await tasks_by_description(store))["flaky"]
    assert (flaky.status, flaky.attempts, flaky.failures, flaky.error) == (
        TaskStatus.DONE,
        3,
        0,
        None,
    )
    failed = [e.data for e in await of_kind(store, "task_failed")]
    assert [(f["attempt"], f["error"], f["will_retry"]) for f in failed] == [
        (1, "RuntimeError: boom", True),
        (2, "not yet", True),
    ]
    # the idempotency key names run, task and attempt; each attempt has its own
    assert [call.key for call in scripted.calls] == [
        f"{RUN}:{flaky.id}:1",
        f"{RUN}:{flaky.id}:2",
        f"{RUN}:{flaky.id}:3",
        f"{RUN}:{scripted.calls[3].task_id}:1",
    ]
    assert all(call.key == f"{RUN}:{call.task_id}:{call.attempts}" for call in scripted.calls)
    # the executor sees the results so far (the failed attempts left none)
    assert scripted.calls[3].results == {flaky.id: "result of flaky"}


async def test_three_failures_in_a_row_fail_the_run_and_resume_gives_a_fresh_budget(
    store: MemoryStore,
) -> None:
    scripted = ScriptedAgent(
        plan=["first", "stubborn", "last"],
        outcomes={
            "stubborn": [
                RuntimeError("one"),
                ExecutionResult(False, "two"),
                ValueError("three"),
                # after the resume: two more failures, then (script used up) success
                RuntimeError("four"),
                RuntimeError("five"),
            ]
        },
    )
    failed = await run_scripted(store, scripted)

    stubborn = (await tasks_by_description(store))["stubborn"]
    assert failed.status is RunStatus.FAILED
    assert failed.error == f"task {stubborn.id} failed 3 attempts in a row: ValueError: three"
    assert (stubborn.status, stubborn.attempts, stubborn.failures, stubborn.error) == (
        TaskStatus.FAILED,
        3,
        3,
        "ValueError: three",
    )
    assert scripted.executed == ["first", "stubborn", "stubborn", "stubborn"]
    run_failed = (await of_kind(store, "run_failed"))[0].data
    assert run_failed["task_id"] == stubborn.id
    assert failed.owner is None  # the lease is released

    # resume: the task gets a fresh budget of three attempts (two fail, the third succeeds)
    resumed = await store.claim_run(
        RUN, current_owner(), expected_epoch=failed.epoch, lease_seconds=60
    )
    final = await Loop(store, resumed, scripted.agent()).run()

    tasks = await tasks_by_description(store)
    assert final.status is RunStatus.COMPLETED, final.error
    assert final.error is None
    assert scripted.executed == ["first", *["stubborn"] * 6, "last"]
    assert (tasks["stubborn"].status, tasks["stubborn"].attempts) == (TaskStatus.DONE, 6)
    assert (tasks["stubborn"].failures, tasks["stubborn"].error) == (0, None)
    assert [call.key for call in scripted.calls[4:7]] == [
        f"{RUN}:{stubborn.id}:{attempt}" for attempt in (4, 5, 6)
    ]
    assert final.result is not None
    assert final.result.startswith("Completed 3 task(s):")


async def test_a_task_that_fails_twice_then_succeeds_does_not_fail_the_run(
    store: MemoryStore,
) -> None:
    boom = RuntimeError("boom")
    scripted = ScriptedAgent(plan=["a"], outcomes={"a": [boom, boom]})
    final = await run_scripted(store, scripted)
    assert final.status is RunStatus.COMPLETED
    assert (await tasks_by_description(store))["a"].attempts == 3


async def test_planner_and_reflector_exceptions_fail_the_run(store: MemoryStore) -> None:
    class Broken(ScriptedAgent):
        async def plan_goal(self, goal: str) -> Sequence[str]:
            raise OSError("no network")

    final = await run_scripted(store, Broken(plan=[]))
    assert final.status is RunStatus.FAILED
    assert final.error == "planner failed: OSError: no network"

    def reflect(n: int, done: Sequence[Task], pending: Sequence[Task]) -> Reflection:
        raise KeyError("gaps")

    other = MemoryStore()
    final = await run_scripted(other, ScriptedAgent(plan=letters(4), reflect_fn=reflect))
    assert final.status is RunStatus.FAILED
    assert final.error == "reflector failed: KeyError: 'gaps'"
    assert final.tasks_done == 3


# -- fencing and abort -------------------------------------------------------------------------


async def test_stale_worker_is_fenced_before_its_first_commit(store: MemoryStore) -> None:
    run = await claimed(store)
    scripted = ScriptedAgent(plan=letters(3))
    stale = Loop(store, run, scripted.agent())
    await steal(store)
    before = await snapshot(store)

    with pytest.raises(LeaseLostError):
        await stale.run()
    assert await snapshot(store) == before
    assert scripted.plans == [GOAL]  # it got as far as asking the planner, no further


async def test_stale_worker_is_fenced_mid_body_and_writes_nothing(store: MemoryStore) -> None:
    taken: list[tuple[RunState, list[Task], dict[str, str], list[Event]]] = []

    async def before_body(task: Task, key: str) -> None:
        if task.description == "task b" and not taken:
            await steal(store)  # another worker takes the run over during this body
            taken.append(await snapshot(store))

    scripted = ScriptedAgent(plan=letters(3), before_body=before_body)
    run = await claimed(store)
    loop = Loop(store, run, scripted.agent())

    with pytest.raises(LeaseLostError):
        await drive(store, loop, heartbeat=30, handle_signals=False)
    assert await snapshot(store) == taken[0]
    assert scripted.executed == ["task a", "task b"]
    assert (await tasks_by_description(store))["task b"].status is TaskStatus.PENDING


async def test_abort_request_is_seen_at_the_step_boundary(store: MemoryStore) -> None:
    async def before_body(task: Task, key: str) -> None:
        if task.description == "task b":
            await store.request_abort(RUN)

    scripted = ScriptedAgent(plan=letters(4), before_body=before_body)
    run = await claimed(store)
    # a heartbeat far away: only the loop's own check at the boundary can see the request
    final = await drive(store, Loop(store, run, scripted.agent()), heartbeat=30)

    tasks = await tasks_by_description(store)
    assert final.status is RunStatus.ABORTED
    assert scripted.executed == ["task a", "task b"]  # b finished; c never began
    assert tasks["task b"].status is TaskStatus.DONE
    assert tasks["task c"].status is TaskStatus.PENDING
    aborted = (await of_kind(store, "run_aborted"))[0].data
    assert (aborted["phase"], aborted["iteration"], aborted["task_id"]) == (
        "executing",
        3,
        tasks["task c"].id,
    )
    assert final.owner is None
    assert final.error is not None
    assert "aborted on request" in final.error


async def test_abort_request_cancels_the_body_in_flight(
    store: MemoryStore,
) -> None:
    heartbeat = 0.2
    cancelled: list[str] = []

    async def before_body(task: Task, key: str) -> None:
        if task.description == "task b":
            await store.request_abort(RUN)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(key)
                raise

    scripted = ScriptedAgent(plan=letters(3), before_body=before_body)
    run = await claimed(store)
    final = await drive(
        store, Loop(store, run, scripted.agent()), heartbeat=heartbeat, handle_signals=False
    )

    task_b = (await tasks_by_description(store))["task b"]
    assert final.status is RunStatus.ABORTED
    assert cancelled == [f"{RUN}:{task_b.id}:1"]
    assert task_b.status is TaskStatus.PENDING
    aborted = (await of_kind(store, "run_aborted"))[0].data
    assert (aborted["phase"], aborted["task_id"]) == ("executing", task_b.id)
    # seen by a heartbeat, while the body (30 s long) was still running: it was cancelled
    # (how soon is a figure for bench/, not a test)


# -- resume at every position (in process) -----------------------------------------------------


class ShiftedClock:
    """The store's clock, shifted: a worker that "crashed" an hour ago has a long-expired
    lease, so the real resume path (resume_run) takes its run over."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.shift


class Crash(BaseException):
    """Stands for the worker dying right after a commit."""


DEMO_OPTIONS = {"tasks": "4", "followups": "2", "fail": "2,5", "delay": "0"}


async def demo_run(store: MemoryStore, run_id: str) -> RunState:
    await store.create_run(
        RunState(run_id=run_id, goal=GOAL, max_iterations=50, agent_options=DEMO_OPTIONS)
    )
    return await resume_run(store, run_id, heartbeat=30, handle_signals=False)


async def test_demo_agent_is_deterministic() -> None:
    first, second, other = MemoryStore(), MemoryStore(), MemoryStore()
    one = await demo_run(first, "one")
    two = await demo_run(second, "two")
    assert one.status is two.status is RunStatus.COMPLETED
    assert one.result == two.result
    assert await first.get_all_tasks("one") == await second.get_all_tasks("two")
    assert await first.get_all_results("one") == await second.get_all_results("two")
    # 4 planned + 2 follow-ups; tasks 2 and 5 took two attempts
    tasks = await first.get_all_tasks("one")
    assert [t.attempts for t in tasks] == [1, 2, 1, 1, 2, 1]
    assert all(t.status is TaskStatus.DONE for t in tasks)

    await other.create_run(
        RunState(run_id="x", goal="another goal", max_iterations=50, agent_options=DEMO_OPTIONS)
    )
    different = await resume_run(other, "x", heartbeat=30, handle_signals=False)
    assert different.result != one.result
    assert {t.id for t in await other.get_all_tasks("x")}.isdisjoint(t.id for t in tasks)


async def test_crash_after_every_commit_then_resume_matches_a_clean_run() -> None:
    clean_store = MemoryStore()
    clean = await demo_run(clean_store, "clean")
    clean_tasks = await clean_store.get_all_tasks("clean")
    commits = sum(
        e.kind in ("planned", "task_done", "task_failed", "reflected")
        for e in await clean_store.read_events(run_id="clean", limit=10_000)
    )
    assert commits == 12  # plan, 8 outcomes (6 tasks, 2 retried), 3 reflections

    for k in range(1, commits + 1):
        clock = ShiftedClock()
        clock.shift = timedelta(hours=-1)
        store = MemoryStore(clock=clock)
        await store.create_run(
            RunState(run_id="r", goal=GOAL, max_iterations=50, agent_options=DEMO_OPTIONS)
        )
        # the crashed worker: this process's pid with another start time, i.e. gone (on
        # this host the process, not the lease, says whether a worker holds the run)
        dead = current_owner().model_copy(update={"pid_started": 1.0})
        run = await store.claim_run("r", dead, expected_epoch=0, lease_seconds=6)
        seen = 0

        def crash_after_k(state: RunState, step: Step, k: int = k) -> None:
            nonlocal seen
            seen += 1
            if seen == k:
                raise Crash

        with pytest.raises(Crash):
            await Loop(store, run, load_agent("demo", DEMO_OPTIONS), on_step=crash_after_k).run()
        crashed = await store.get_run("r")
        crashed_tasks = {t.id: t for t in await store.get_all_tasks("r")}
        claims: list[RunState] = []

        clock.shift = timedelta(0)
        final = await resume_run(
            store,
            "r",
            heartbeat=30,
            handle_signals=False,
            on_claim=lambda state, step, claims=claims: claims.append(state),
        )

        assert final.status is RunStatus.COMPLETED, (k, final.error)
        assert final.result == clean.result, k
        tasks = await store.get_all_tasks("r")
        assert [t.model_copy(update={"attempts": 0}) for t in tasks] == [
            t.model_copy(update={"attempts": 0}) for t in clean_tasks
        ], k
        # exact attempts: the clean run's, except that a task in flight at the crash is run
        # again under the next attempt number
        expected = {t.id: t.attempts for t in clean_tasks}
        in_flight = crashed_tasks.get(crashed.current_task_id or "")
        if (
            crashed.phase is Phase.EXECUTING
            and in_flight is not None
            and in_flight.status is TaskStatus.PENDING
        ):
            expected[in_flight.id] = max(expected[in_flight.id], in_flight.attempts + 1)
        assert {t.id: t.attempts for t in tasks} == expected, k
        assert await store.get_all_results("r") == await clean_store.get_all_results("clean")
        planned = [e for e in await store.read_events(run_id="r") if e.kind == "planned"]
        assert len(planned) == 1, k  # planned once, whatever the crash point
        if crashed.status is RunStatus.COMPLETED:
            assert claims == [], k  # resuming a completed run returns at once
            assert final == crashed
        else:
            # the resumed worker starts at the exact stored position
            assert [(c.phase, c.iteration, c.current_task_id) for c in claims] == [
                (crashed.phase, crashed.iteration, crashed.current_task_id)
            ], k


async def test_resume_of_an_in_flight_task_runs_it_again_under_the_next_attempt(
    store: MemoryStore,
) -> None:
    seen = 0

    def crash_on_second_commit(state: RunState, step: Step) -> None:
        nonlocal seen
        seen += 1
        if seen == 2:  # task a's outcome + task b's start are committed
            raise Crash

    scripted = ScriptedAgent(plan=letters(2))
    run = await claimed(store)
    with pytest.raises(Crash):
        await Loop(store, run, scripted.agent(), on_step=crash_on_second_commit).run()
    crashed = await store.get_run(RUN)
    task_b = (await tasks_by_description(store))["task b"]
    assert (crashed.phase, crashed.current_task_id, task_b.attempts) == (
        Phase.EXECUTING,
        task_b.id,
        1,
    )

    resumed = await steal(store)
    final = await Loop(store, resumed, scripted.agent()).run()

    assert final.status is RunStatus.COMPLETED
    assert [call.key for call in scripted.calls][1:] == [f"{RUN}:{task_b.id}:2"]
    started = [
        e.data for e in await of_kind(store, "task_started") if e.data["task_id"] == task_b.id
    ]
    assert [(s["attempt"], s.get("resumed", False)) for s in started] == [(1, False), (2, True)]


async def test_resume_of_a_completed_run_returns_at_once(store: MemoryStore) -> None:
    done = await demo_run(store, "done")
    before = await snapshot(store, "done")
    again = await resume_run(store, "done", heartbeat=30, handle_signals=False)
    assert again == done
    assert await snapshot(store, "done") == before


async def test_an_unclaimed_run_shows_running_only_for_its_claim_grace(
    store: MemoryStore,
) -> None:
    # a detached worker needs time to start: the stored run waits for it (CLAIM_GRACE)
    detached = new_run("detached", GOAL, options={"delay": "0"})
    # the foreground command stores its run as its own (this process, alive): running, and it
    # claims it without a busy refusal (tests/loop/test_foreground_claim.py kills it first)
    foreground = new_run("foreground", GOAL, options={"delay": "0"}, claimed_here=True)
    # no grace and no owner: nobody will claim it, so it shows as crashed (resumable) at once
    orphan = new_run("orphan", GOAL, options={"delay": "0"}, claim_grace=0)
    for run in (detached, foreground, orphan):
        await store.create_run(run)
    assert shown_status(await store.get_run("detached")) is ShownStatus.RUNNING
    assert shown_status(await store.get_run("foreground")) is ShownStatus.RUNNING
    assert shown_status(await store.get_run("orphan")) is ShownStatus.CRASHED
    for run_id in ("foreground", "orphan"):
        final = await resume_run(store, run_id, heartbeat=30, handle_signals=False)
        assert final.status is RunStatus.COMPLETED
