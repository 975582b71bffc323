"""Crash safety: kill -9 a daily run at every failpoint, rerun it, and get exactly what an uncrashed run gives.

The runs are real daily flows in forked children of tests/crash_driver.py (one import of the pipeline for all of
them), against the session's throw-away Prefect API. The world is tiny (two days, so that each per-day point is
reached once for a catch-up day and once for the run's own day).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pytest

from gnnrec.tasks.publish.analytics import open_store
from gnnrec.tasks.data.demo import generate_demo_world
from gnnrec.tasks.ops.failpoints import FAILPOINT_ENV, FAILPOINTS, TRACE_ENV, armed, failpoint

PROJECT_DIR = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("crash_driver.py")
START = date(2026, 3, 1)
TINY = {"model": "mf", "epochs": 2, "embedding_dim": 8, "top_k": 5, "eval_days": 1, "seed": 3}
SOURCES = ("interactions", "social", "kg", "item_entities")


def _drive(root: Path, landing: Path, params: dict, runs: list[dict], parallel: int = 2) -> dict[str, dict[str, int]]:
    from prefect.settings import PREFECT_API_URL

    plan = root / f"plan-{len(list(root.glob('plan-*.json')))}.json"
    plan.write_text(json.dumps({"params": params, "landing": str(landing), "runs": runs, "parallel": parallel}))
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(PROJECT_DIR)}
    env.pop(FAILPOINT_ENV, None)
    subprocess.run([sys.executable, str(DRIVER), str(plan)], env=env, check=True, cwd=PROJECT_DIR, timeout=900)
    return {run["root"]: json.loads(Path(run["root"], "outcome.json").read_text()) for run in runs}


def _rows(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> list[tuple]:
    return con.execute(query, params or []).fetchall()


def _snapshot(root: Path) -> dict[str, object]:
    """What a run leaves behind that must not depend on whether an earlier run crashed (ids and times aside)."""
    data = root / "data"
    with duckdb.connect(str(data / "gnnrec.duckdb"), read_only=True) as con:
        shot: dict[str, object] = {
            f"{layer}.{source}": _rows(con, f"select * from {layer}.{source} order by all")
            for layer in ("raw", "clean", "quarantine")
            for source in SOURCES
        }
        shot["files"] = _rows(
            con, "select ds, source, path, sha256, rows_read, rows_loaded, rows_quarantined, status from ops.ingest_files order by all"
        )
        shot["days"] = _rows(con, "select ds, state, inputs_digest from ops.day_progress order by ds")
        shot["ids"] = _rows(con, "select user_id, user_idx from graph.user_ids order by all") + _rows(
            con, "select item_id, item_idx from graph.item_ids order by all"
        )
        shot["published"] = _rows(con, "select ds, model, user_id, rank, item_id, score from recs.latest_topk order by all")
        shot["metrics"] = _rows(
            con, "select metric, k, value from ops.metrics join ops.runs using (run_id) where status = 'completed' order by all"
        )
        shot["completed"] = _rows(con, "select count(*) from ops.runs where status = 'completed'")
        shot["running"] = _rows(con, "select run_id from ops.runs where status = 'running'")
    with open_store(data / "analytics.duckdb") as store:
        shot["store.published"] = _rows(store, "select ds, model, user_id, rank, item_id, score from recs.latest_topk order by all")
        shot["store.running"] = _rows(store, "select run_id from ops.runs where status = 'running'")
        shot["store.completed"] = _rows(store, "select count(*) from ops.runs where status = 'completed'")
    shot["temporaries"] = sorted(p.name for p in data.rglob("*.tmp*"))
    return shot


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path, date]:
    root = tmp_path_factory.mktemp("crash")
    landing = root / "landing"
    summary = generate_demo_world(landing, start=START, days=2, users=60, items=40, seed=5)
    return root, landing, summary.days[-1]


@pytest.fixture(scope="module")
def sweep(prefect_harness, world):
    """An uncrashed reference run (tracing every failpoint it reaches), then one crash-and-rerun per (point, hit)."""
    root, landing, last = world
    params = TINY | {"ds": last.isoformat()}
    trace = root / "trace.txt"
    reference = root / "reference"
    outcome = _drive(root, landing, params, [{"root": str(reference), "env": {TRACE_ENV: str(trace)}}], parallel=1)
    assert outcome[str(reference)] == {"crash": 0}, (reference / "crash.log").read_text()
    hits = Counter(trace.read_text().split())
    cases = [(name, n) for name in FAILPOINTS for n in range(1, hits[name] + 1)]
    runs = [
        {"root": str(root / f"{name}-{n}"), "env": {FAILPOINT_ENV: f"{name}:{n}"}, "then_rerun": True} for name, n in cases
    ]
    return reference, hits, cases, _drive(root, landing, params, runs)


def test_every_failpoint_is_reached_for_catch_up_days_and_the_runs_own_day(sweep):
    _, hits, cases, _ = sweep
    assert set(hits) == set(FAILPOINTS)
    per_day = ("ingest-before-commit", "ingest-committed", "contracts-before-commit", "contracts-committed")
    assert all(hits[name] == 2 for name in per_day)  # the catch-up day, then the run's own day
    assert hits["trained"] == 2  # the holdout model and the final one
    assert len(cases) == sum(hits.values())


def test_a_crash_anywhere_then_a_rerun_equals_an_uncrashed_run(sweep):
    reference, _, cases, outcomes = sweep
    expected = _snapshot(reference)
    assert expected["published"] and expected["published"] == expected["store.published"]
    assert expected["completed"] == expected["store.completed"] == [(1,)] and expected["running"] == []
    for name, n in cases:
        root = reference.with_name(f"{name}-{n}")
        assert outcomes[str(root)] == {"crash": -9, "rerun": 0}, f"{name}:{n}\n" + (root / "rerun.log").read_text()[-3000:]
        got = _snapshot(root)
        differences = [key for key in expected if got[key] != expected[key]]
        assert differences == [], f"{name}:{n} differs from the uncrashed run in {differences}"


def test_the_dead_run_is_marked_abandoned_by_the_run_that_found_it(sweep):
    reference, _, _, _ = sweep
    crashed = reference.with_name("trained-2") / "data"
    with duckdb.connect(str(crashed / "gnnrec.duckdb"), read_only=True) as con:
        ((dead, message, finished),) = _rows(con, "select run_id, message, finished_at from ops.runs where status = 'abandoned'")
        ((alive,),) = _rows(con, "select run_id from ops.runs where status = 'completed'")
    assert message.startswith(f"found running by run {alive} at ") and finished is not None
    assert not (crashed / "checkpoints" / dead).exists() and (crashed / "checkpoints" / alive).exists()


def test_a_crash_while_validating_a_day_is_resumed_by_the_next_days_run(prefect_harness, tmp_path):
    """Defect 1: kill the day-2 run inside the transaction that ingests and validates day 2; the day-3 run ingests
    and validates day 2 before training."""
    landing = tmp_path / "landing"
    days = generate_demo_world(landing, start=START, days=3, users=60, items=40, seed=6).days
    runs = [{"root": str(tmp_path / "run"), "env": {FAILPOINT_ENV: "ingest-before-commit:2"}, "then_rerun": True,
             "rerun_with": {"ds": days[2].isoformat()}}]  # fmt: skip
    outcome = _drive(tmp_path, landing, TINY | {"ds": days[1].isoformat()}, runs, parallel=1)
    assert outcome[runs[0]["root"]] == {"crash": -9, "rerun": 0}
    with duckdb.connect(str(tmp_path / "run" / "data" / "gnnrec.duckdb"), read_only=True) as con:
        assert _rows(con, "select ds, state from ops.day_progress order by ds") == [(d, "accepted") for d in days]
        ((read, loaded, quarantined),) = _rows(
            con, f"select sum(rows_read), sum(rows_loaded), sum(rows_quarantined) from ops.ingest_files "
            f"where ds = '{days[1]}' and source = 'interactions'",
        )
        assert read == loaded + quarantined
        assert _rows(con, f"select count(*) from clean.interactions where ds = '{days[1]}'") == [(loaded,)] != [(0,)]
        assert _rows(con, "select status from ops.runs order by started_at") == [("abandoned",), ("completed",)]


def test_a_crash_inside_a_critical_contract_check_never_lets_the_day_through(prefect_harness, tmp_path):
    """Defect 2: a day with conflicting ratings is refused uncrashed; killed inside its check, the next day's run
    still refuses it (exit 1) and publishes nothing."""
    landing = tmp_path / "landing"
    days = generate_demo_world(landing, start=START, days=3, users=60, items=40, seed=6).days
    conflicting = landing / "interactions" / f"ds={days[1]}" / "late.csv"
    conflicting.write_text(
        f"user_id,item_id,event,rating,ts\nu-x,sku-y,rate,5,{days[1]}T10:00:00Z\nu-x,sku-y,rate,1,{days[1]}T10:00:00Z\n"
    )
    runs = [{"root": str(tmp_path / "run"), "env": {FAILPOINT_ENV: "contracts-before-commit:2"}, "then_rerun": True,
             "rerun_with": {"ds": days[2].isoformat()}}]  # fmt: skip
    outcome = _drive(tmp_path, landing, TINY | {"ds": days[1].isoformat()}, runs, parallel=1)
    assert outcome[runs[0]["root"]] == {"crash": -9, "rerun": 1}
    with duckdb.connect(str(tmp_path / "run" / "data" / "gnnrec.duckdb"), read_only=True) as con:
        assert _rows(con, "select ds, state from ops.day_progress order by ds") == [(days[0], "accepted"), (days[1], "refused")]
        assert _rows(con, "select count(*) from recs.publications") == [(0,)]
        assert _rows(con, "select status from ops.runs order by started_at") == [("abandoned",), ("failed",)]
        assert _rows(
            con, "select expectation from ops.validation_results where ds = ? and critical and not success", [days[1]]
        ) == [("ratings_agree_per_event",)]


def test_failpoint_spec_is_checked_and_counts_hits(monkeypatch, tmp_path):
    monkeypatch.setenv(FAILPOINT_ENV, "no-such-point")
    with pytest.raises(ValueError, match="unknown failpoint 'no-such-point'"):
        armed()
    monkeypatch.setenv(FAILPOINT_ENV, "trained:0")
    with pytest.raises(ValueError, match="positive integer"):
        armed()
    monkeypatch.setenv(FAILPOINT_ENV, "trained:3")
    assert armed() == ("trained", 3)
    monkeypatch.delenv(FAILPOINT_ENV)
    trace = tmp_path / "trace"
    monkeypatch.setenv(TRACE_ENV, str(trace))
    failpoint("trained")
    failpoint("run-registered")
    assert trace.read_text().split() == ["trained", "run-registered"]
    with pytest.raises(KeyError):
        failpoint("not-registered")
