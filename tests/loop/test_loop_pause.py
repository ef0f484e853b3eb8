"""An executor pauses its run (the way ``approval`` and a budget cut mid-body come in): the
attempt is journaled under the pause's reason, not as a failure; the task stays pending with
its failures unchanged; the worker stops with the run ``paused`` and released; a claim takes
it up, the loop knows why it was paused, and the task runs again under the next attempt."""

from __future__ import annotations

from loopkit import ScriptedAgent

from nanoagent_core.agents.base import ExecutionResult, ModelUsage, Transcript
from nanoagent_core.loop import Loop
from nanoagent_core.memory_store import MemoryStore
from nanoagent_core.models import EventKind, PauseReason, Phase, RunState, RunStatus, TaskStatus
from nanoagent_core.pause import Pause
from nanoagent_core.procinfo import current_owner
from nanoagent_core.status import ShownStatus, shown_status
from nanoagent_core.worker import drive

RUN = "r1"


def pausing(reason: PauseReason) -> ExecutionResult:
    usage = ModelUsage(requests=1, input_tokens=40, output_tokens=2, model="test")
    return ExecutionResult(
        False,
        "stopped short",
        Transcript(messages_json="[]", usage=usage),
        pause=Pause(reason, "approve send_email\nto bob?"),
    )


async def test_an_executor_pauses_the_run_and_a_resume_runs_the_task_again() -> None:
    store = MemoryStore()
    scripted = ScriptedAgent(plan=["a", "b", "c"], outcomes={"b": [pausing(PauseReason.APPROVAL)]})
    await store.create_run(RunState(run_id=RUN, goal="g", max_iterations=50, agent="scripted"))
    claimed = await store.claim_run(RUN, current_owner(), expected_epoch=0, lease_seconds=60)
    loop = Loop(store, claimed, scripted.agent())
    paused = await drive(store, loop, heartbeat=30, handle_signals=False)

    assert paused.status is RunStatus.PAUSED
    assert (paused.pause_reason, paused.pause_detail) == (
        PauseReason.APPROVAL,
        "approve send_email to bob?",
    )
    assert (paused.owner, paused.lease_expires_at, paused.error) == (None, None, None)
    assert shown_status(paused) is ShownStatus.PAUSED
    tasks = {t.description: t for t in await store.get_all_tasks(RUN)}
    b = tasks["b"]
    assert (b.status, b.attempts, b.failures, b.error) == (TaskStatus.PENDING, 1, 0, None)
    assert (tasks["c"].status, tasks["c"].attempts) == (TaskStatus.PENDING, 0)
    assert (paused.phase, paused.current_task_id) == (Phase.EXECUTING, b.id)
    [entry] = await store.get_attempts(RUN)
    assert (entry.task_id, entry.attempt, entry.outcome, entry.tokens_in) == (
        b.id,
        1,
        "approval",
        40,
    )
    assert paused.tokens_in == 40
    kinds = [e.kind for e in await store.read_events(run_id=RUN)]
    assert EventKind.TASK_FAILED not in kinds
    assert kinds[-1] == EventKind.RUN_PAUSED

    again = await store.claim_run(RUN, current_owner(), expected_epoch=paused.epoch,
                                  lease_seconds=60)  # fmt: skip
    assert again.pause_reason is None
    resumed = Loop(store, again, scripted.agent(), resumed_pause=paused.pause_reason)
    assert resumed.resumed_pause is PauseReason.APPROVAL
    done = await drive(store, resumed, heartbeat=30, handle_signals=False)
    assert done.status is RunStatus.COMPLETED
    assert scripted.executed == ["a", "b", "b", "c"]
    assert [c.attempts for c in scripted.calls if c.description == "b"] == [1, 2]
    b_after = {t.description: t for t in await store.get_all_tasks(RUN)}["b"]
    assert (b_after.status, b_after.attempts, b_after.failures) == (TaskStatus.DONE, 2, 0)
