"""Two real processes: an analyst holding a read-only session on the store, querying in a loop, while a full
daily run republishes the same (ds, model). The run must not be blocked, and no query may see a partial or
mixed partition."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

from gnnrec.flows.daily import run_daily
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.publish.analytics import open_store
from gnnrec.tasks.data.demo import generate_demo_world

TOP_K = 10

# The analyst, in one of two modes: "held" opens one session before the run and keeps it; "fresh" opens a new
# session every round (in one process DuckDB shares a file's open instance, hence two processes). Each round checks
# that every (ds, model) comes from one run, that every user has ranks 1..K exactly once, and that the
# partition matches its publication record; it reports what it saw when the stop file appears.
ANALYST = """
import json, os, sys, duckdb
store, stop, ready, top_k, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
# the views name their files relative to the store's folder
config = {"file_search_path": os.path.dirname(os.path.abspath(store))}
CHECK = '''
with per_user as (
    select ds, model, run_id, user_id, count(*) as n, count(distinct rank) as ranks, min(rank) as lo, max(rank) as hi
    from recs.topk group by all
),
per_partition as (
    select ds, model, count(distinct run_id) as runs, any_value(run_id) as run_id, count(distinct user_id) as users,
        sum(n) as rows, count(*) filter (where n <> $k or ranks <> $k or lo <> 1 or hi <> $k) as bad_users
    from per_user group by all
)
select p.ds::varchar, p.model, p.runs, p.run_id, p.bad_users, p.users = pub.users and p.rows = pub.rows
    and p.run_id = pub.run_id as matches_publication
from per_partition as p left join recs.publications as pub using (ds, model)
'''
held = duckdb.connect(store, read_only=True, config=config) if mode == "held" else None
seen, violations, rounds = set(), [], 0
open(ready, "w").close()
while True:
    stopping = os.path.exists(stop)
    con = held or duckdb.connect(store, read_only=True, config=config)
    for ds, model, runs, run_id, bad_users, matches in con.execute(CHECK, {"k": top_k}).fetchall():
        seen.add(run_id)
        if runs != 1 or bad_users != 0 or not matches:
            violations.append([ds, model, runs, run_id, bad_users, matches])
    if held is None:
        con.close()
    rounds += 1
    if stopping:
        break
print(json.dumps({"rounds": rounds, "violations": violations, "seen": sorted(seen)}))
"""


def test_analyst_session_neither_blocks_a_run_nor_sees_a_partial_partition(prefect_harness, tmp_path: Path):
    landing, db = tmp_path / "landing", tmp_path / "data" / "gnnrec.duckdb"
    world = generate_demo_world(landing, start=date(2026, 2, 1), days=5, users=240, items=150, seed=3)
    params = DailyParams(
        ds=world.days[-1], model="lightgcn", top_k=TOP_K, epochs=3, embedding_dim=16, landing=landing, db=db,
        keep_checkpoints=1,
    )
    analytics = params.analytics  # the store of --db: data/gnnrec.analytics/views.duckdb
    assert analytics == tmp_path / "data" / "gnnrec.analytics" / "views.duckdb"
    first = run_daily(params)

    stop = tmp_path / "stop"
    analysts = {
        mode: subprocess.Popen(
            [sys.executable, "-c", ANALYST, str(analytics), str(stop), str(tmp_path / f"{mode}.ready"), str(TOP_K), mode],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for mode in ("held", "fresh")
    }
    try:
        deadline = time.monotonic() + 60
        for mode, analyst in analysts.items():
            while not (tmp_path / f"{mode}.ready").exists():
                assert analyst.poll() is None, analyst.stderr.read()
                assert time.monotonic() < deadline, f"the {mode} analyst did not start"
                time.sleep(0.1)
        second = run_daily(params.model_copy(update={"seed": 99}))
        stop.touch()
        reports = {}
        for mode, analyst in analysts.items():
            out, err = analyst.communicate(timeout=60)
            assert analyst.returncode == 0, err
            reports[mode] = json.loads(out)
    finally:
        for analyst in analysts.values():
            if analyst.poll() is None:
                analyst.kill()

    for report in reports.values():
        assert report["violations"] == []
        assert report["rounds"] >= 2
    # the session held since before the run still reads the generation it opened, intact
    assert reports["held"]["seen"] == [first.run_id]
    # fresh sessions saw the old list, then the new one (the last round starts after the run)
    assert set(reports["fresh"]["seen"]) <= {first.run_id, second.run_id}
    assert second.run_id in reports["fresh"]["seen"]
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = con.execute("select run_id, status from ops.runs order by started_at").fetchall()
        published = con.execute("select user_id, rank, item_id from recs.topk order by all").fetchall()
    assert statuses == [(first.run_id, "completed"), (second.run_id, "completed")]
    # --keep-checkpoints 1: the second run's completion deleted the first run's checkpoints
    assert [p.name for p in (tmp_path / "data" / "checkpoints").iterdir()] == [second.run_id]
    assert sorted(p.name for p in (tmp_path / "data" / "checkpoints" / second.run_id).iterdir()) == ["final.pt", "holdout.pt", "training_curve.png"]
    with open_store(analytics) as con:
        assert con.execute("select user_id, rank, item_id from recs.topk order by all").fetchall() == published
        assert con.execute("select distinct run_id from recs.topk").fetchall() == [(second.run_id,)]
