"""Issue 9, item 13 on PostgreSQL: one unreadable run row (agent_options not JSON) is shown
as damaged; list, list --json, show of another run and the dashboard's LiveData all work.
The commands run in this process (pgkit.here), but ``show`` of the damaged run: a real
process (no traceback from the interpreter)."""

from __future__ import annotations

import json

from pgkit import ahere, cli, new_run, sql_rows

from nanoagent_core.models import utc_now
from nanoagent_core.postgres import PostgresStore
from nanoagent_tui.live import LiveData, SortMode


async def test_one_unreadable_row_is_shown_damaged_the_rest_usable(
    store: PostgresStore, location: str, pg_url: str, schema: str
) -> None:
    for run_id in ("good-1", "bad", "good-2"):
        await store.create_run(new_run(run_id))
    sql_rows(
        pg_url, f"UPDATE \"{schema}\".runs SET agent_options = 'not json {{' WHERE run_id = 'bad'"
    )
    listed = await ahere(["list", "--db", location])
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[1]: line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert lines["bad"] == "damaged"
    assert lines["good-1"] != "damaged"
    as_json = await ahere(["list", "--json", "--db", location])
    assert as_json.returncode == 0, as_json.stderr
    by_id = {r["run_id"]: r for r in json.loads(as_json.stdout)}
    assert by_id["bad"]["status"] == "damaged"
    assert "agent_options" in by_id["bad"]["damaged"]
    good = await ahere(["show", "good-1", "--db", location])
    assert good.returncode == 0, good.stderr
    bad = cli(["show", "bad", "--db", location])
    assert bad.returncode == 0, bad.stderr
    assert "damaged: agent_options" in bad.stdout.splitlines()[0]
    refused = await ahere(["resume", "bad", "--db", location])
    assert refused.returncode == 2, refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert "is damaged" in refused.stderr
    live = LiveData(location)
    try:
        await live.poll(utc_now())
        assert live.health.value == "live", live.message
        words = {run.run_id: word for run, word in live.visible(utc_now(), SortMode.CREATED)}
        assert words["bad"] == "damaged"
        assert words["good-1"] != "damaged"
    finally:
        await live.close()
