"""Backfills, the run registry and the writer lock, under a throw-away Prefect API."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from gnnrec.flows.backfill import BACKFILL_FLOW, BackfillParams, run_backfill
from gnnrec.flows.cli import main
from gnnrec.flows.daily import run_daily, run_parameters
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.publish.analytics import open_store
from gnnrec.tasks.ops.backfill import backfill_plan
from gnnrec.tasks.learn.curves import TrainingCurve, metrics_comparison, training_curve_png, training_curve_table
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.data.demo import generate_demo_world
from gnnrec.tasks.ops.lock import WarehouseBusy, warehouse_lock

START = date(2026, 4, 1)
DAYS = [date(2026, 4, d) for d in (1, 2, 3, 4)]
TINY = {"top_k": 10, "epochs": 2, "embedding_dim": 8}


def _runs(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select run_id, flow, ds, status, params ->> 'train' from ops.runs order by started_at").fetchall()


@pytest.fixture(scope="module")
def backfilled(prefect_harness, tmp_path_factory):
    """Four days backfilled (publish the last), then the same backfill again, unchanged."""
    root = tmp_path_factory.mktemp("backfill")
    landing, db = root / "landing", root / "data" / "gnnrec.duckdb"
    generate_demo_world(landing, start=START, days=4, users=150, items=90, seed=2)
    params = BackfillParams(
        start=DAYS[0], end=DAYS[-1], model="mf", landing=landing, db=db, analytics=root / "data" / "analytics.duckdb",
        curve_recall=True, **TINY,
    )
    first = run_backfill(params)
    runs_after_first = _runs(db)
    again = run_backfill(params)
    return params, first, runs_after_first, again


def test_plan_orders_days_and_marks_what_trains():
    assert backfill_plan(DAYS[0], DAYS[2], "last") == [(DAYS[0], False), (DAYS[1], False), (DAYS[2], True)]
    assert backfill_plan(DAYS[0], DAYS[1], "every") == [(DAYS[0], True), (DAYS[1], True)]
    with pytest.raises(ValueError, match="before its start"):
        backfill_plan(DAYS[1], DAYS[0], "last")


def test_backfill_runs_every_day_in_order_and_publishes_the_last(backfilled):
    params, first, runs, _ = backfilled
    assert [r.ds for r in first.completed] == DAYS and first.skipped == {}
    assert [(flow, ds, status, train) for _, flow, ds, status, train in runs] == [
        (BACKFILL_FLOW, day, "completed", "true" if day == DAYS[-1] else "false") for day in DAYS
    ]
    with duckdb.connect(str(params.db), read_only=True) as con:
        published = con.execute("select ds, model, run_id, users, rows from recs.publications").fetchall()
        ingested = con.execute("select distinct ds from ops.ingest_files order by ds").fetchall()
    assert ingested == [(day,) for day in DAYS]
    last = first.completed[-1]
    assert published == [(DAYS[-1], "mf", last.run_id, last.published.users, last.published.rows)]
    with open_store(params.analytics) as con:
        assert con.execute("select ds, model, run_id, count(*) from recs.topk group by all").fetchall() == [
            (DAYS[-1], "mf", last.run_id, last.published.rows)
        ]


def test_rerunning_skips_every_day_and_records_nothing_new(backfilled):
    params, first, runs, again = backfilled
    assert again.completed == []
    assert again.skipped == {r.ds: r.run_id for r in first.completed}
    assert _runs(params.db) == runs


def test_registry_records_inputs_code_libraries_seed_device_and_stage_times(backfilled):
    params, first, _, _ = backfilled
    last = first.completed[-1]
    with duckdb.connect(str(params.db), read_only=True) as con:
        row = con.execute(
            "select params, inputs_digest, input_files, code_version, library_versions, seed, device, stage_seconds, message "
            "from ops.runs where run_id = ?", [last.run_id],
        ).fetchone()
        files = dict(con.execute("select path, sha256 from ops.ingest_files where ds = ?", [DAYS[-1]]).fetchall())
    recorded_params, digest, input_files, code, libraries, seed, device, stages, message = row
    assert json.loads(recorded_params) == run_parameters(params.for_day(DAYS[-1]), train=True)
    assert json.loads(recorded_params)["ds"] == "2026-04-04" and json.loads(recorded_params)["model"] == "mf"
    assert json.loads(input_files) == files and len(digest) == 64
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, check=True)
    assert code.removesuffix("+dirty") == head.stdout.strip()
    assert {"python", "torch", "duckdb", "prefect"} <= set(json.loads(libraries))
    assert (seed, device, message) == (params.seed, "cpu", None)
    assert set(json.loads(stages)) == {"ingest", "validate", "build_graph", "train", "evaluate", "publish", "analytics"}


def _artifacts(key: str) -> list:
    """The artifacts stored under ``key``, newest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC)


def test_each_trained_run_publishes_its_metrics_and_training_curve(backfilled):
    params, first, _, _ = backfilled
    last = first.completed[-1]
    (metrics,) = _artifacts("metrics-mf")
    table = json.loads(metrics.data) if isinstance(metrics.data, str) else metrics.data
    assert table == metrics_comparison(last.metrics, {})  # the first mf run: nothing to compare with
    assert {row["previous"] for row in table} == {None} and len(table) == 15
    assert [row["metric"] for row in table[:2]] == ["recall", "ndcg"] and table[0]["k"] == table[1]["k"] == 20
    (curve,) = _artifacts("training-curve-mf")
    png = base64.b64decode(curve.data.removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG") and png == (params.db.parent / "checkpoints" / last.run_id / "training_curve.png").read_bytes()
    (epochs,) = _artifacts("training-epochs-mf")
    rows = [line.strip("|").split("|") for line in epochs.data.splitlines()[2:]]
    assert [int(row[0]) for row in rows] == list(range(1, TINY["epochs"] + 1))
    # after the last epoch the holdout model is the one evaluated: its curve ends at the recorded Recall@20
    assert float(rows[-1][-1]) == pytest.approx(last.metrics[("recall", 20)], abs=5e-5)


def test_a_changed_file_redoes_its_day_and_the_days_after(backfilled, tmp_path):
    params, first, _, _ = backfilled
    changed = sorted((params.landing / "interactions" / f"ds={DAYS[1]}").iterdir())[0]
    original = changed.read_bytes()
    try:
        changed.write_bytes(original + original.splitlines(keepends=True)[1])  # one more (duplicate) row
        redo = run_backfill(params)
    finally:
        changed.write_bytes(original)
    assert set(redo.skipped) == {DAYS[0]}
    assert [r.ds for r in redo.completed] == DAYS[1:]
    # the redone last day's metrics artifact compares against the first backfill's run
    newest = _artifacts("metrics-mf")[0]
    table = json.loads(newest.data) if isinstance(newest.data, str) else newest.data
    assert table == metrics_comparison(redo.completed[-1].metrics, first.completed[-1].metrics)
    forced = run_backfill(params.model_copy(update={"force": True, "start": DAYS[2]}))
    assert [r.ds for r in forced.completed] == DAYS[2:] and forced.skipped == {}


def test_cli_lists_runs_and_shows_one(backfilled, capsys, monkeypatch, tmp_path):
    params, first, _, _ = backfilled
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "--db", str(params.db), "--limit", "50"]) == 0
    listing = capsys.readouterr().out
    assert all(r.run_id in listing for r in first.completed)
    last = first.completed[-1]
    assert main(["show-run", last.run_id[:10], "--db", str(params.db)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"run {last.run_id}\n")
    assert f"recall@20      {last.metrics[('recall', 20)]:.4f}" in shown and "code_version" in shown


def test_runs_reads_the_analytics_store_while_a_writer_holds_the_warehouse(backfilled, capsys, monkeypatch, tmp_path):
    params, first, _, _ = backfilled
    monkeypatch.chdir(tmp_path)
    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(60)",
         str(params.db)], stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline() == "open\n"
        assert main(["runs", "--db", str(params.db), "--analytics", str(params.analytics)]) == 0
    finally:
        writer.kill()
        writer.wait()
    out = capsys.readouterr().out
    assert out.startswith(f"(a run holds {params.db}; showing the analytics store {params.analytics} as of its last publication)")
    # the store's snapshot was taken when the last day published, after the first three days had completed
    assert all(r.run_id in out for r in first.completed)


def test_same_inputs_parameters_and_seed_publish_the_same_top_k(prefect_harness, tmp_path):
    landing = tmp_path / "landing"
    world = generate_demo_world(landing, start=START, days=3, users=120, items=80, seed=4)
    published = []
    for name in ("a", "b"):
        params = DailyParams(ds=world.days[-1], model="lightgcn", landing=landing, db=tmp_path / name / "gnnrec.duckdb",
                             analytics=tmp_path / name / "analytics.duckdb", **TINY)
        result = run_daily(params)
        with duckdb.connect(str(params.db), read_only=True) as con:
            published.append(con.execute("select ds, model, user_id, rank, item_id, score from recs.topk order by all").fetchall())
        assert result.published.rows == len(published[-1]) > 0
    assert published[0] == published[1]


def test_a_second_writer_fails_at_once_naming_the_holder(prefect_harness, tmp_path, capsys, caplog):
    db = tmp_path / "gnnrec.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from gnnrec.tasks.ops.lock import warehouse_lock\n"
         "with warehouse_lock(Path(sys.argv[1]), 'test holder'):\n    print('held', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert holder.stdout.readline() == "held\n"
        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match=f"locked by another run: pid {holder.pid} .*: test holder"):
            run_daily(DailyParams(ds=START, landing=tmp_path, db=db))
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--ds", str(START), "--landing", str(tmp_path), "--db", str(db)])
        assert exit_info.value.code == 3
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith(f"gnnrec run: error: warehouse {db} is locked by another run: pid {holder.pid}")
        caplog.clear()
        with pytest.raises(WarehouseBusy, match="after waiting 1s"):
            with warehouse_lock(db, "second", wait_seconds=1):
                pass
        # a waiting run says in its logs what it waits for, and whose the lock is
        (waiting,) = [r.getMessage() for r in caplog.records if r.name == "gnnrec.tasks.ops.lock"]
        assert waiting.startswith(f"waiting for the warehouse {db} (0s of at most 1s so far): held by pid {holder.pid} ")
        assert waiting.endswith(": test holder")
        assert time.monotonic() - started < 30
        assert not db.exists()  # the refused run never opened the warehouse
    finally:
        holder.kill()
        holder.wait()
    with warehouse_lock(db, "after the holder died"):  # the kernel released the dead holder's lock
        pass


def test_old_warehouses_gain_the_registry_columns(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema ops")
        con.execute(
            "create table ops.runs (run_id varchar primary key, flow varchar not null, ds date not null, model varchar not null,"
            " params json, status varchar not null, message varchar, started_at timestamp not null, finished_at timestamp)"
        )
        con.execute("insert into ops.runs values ('old', 'daily-recommendations', '2026-01-01', 'mf', '{}', 'completed', null, '2026-01-01 03:00', null)")
    with connect(db) as con:
        rows = con.execute("select run_id, status, code_version, stage_seconds from ops.runs").fetchall()
    assert rows == [("old", "completed", None, None)]


def test_curve_and_comparison_are_exact():
    curve = TrainingCurve("holdout model", [0.7, 0.5, 0.4], [(2, 0.3)], "recall@20", 2, [0.1, 0.25, 0.2])
    assert training_curve_table(curve) == (
        "| epoch | loss | validation recall@20 | holdout recall@20 |\n|---:|---:|---:|---:|\n"
        "| 1 | 0.700000 |  | 0.1000 |\n| 2 | 0.500000 | 0.3000 | 0.2500 |\n| 3 | 0.400000 |  | 0.2000 |\n"
    )
    png = training_curve_png(curve, "mf")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and int.from_bytes(png[16:20]) == 900  # 9 in at 100 dpi
    # the headline first, whatever the names' order; values rounded for reading
    assert metrics_comparison(
        {("hit_rate", 20): 0.75, ("ndcg", 20): 0.251234, ("recall", 10): 0.2, ("recall", 20): 0.5}, {("recall", 20): 0.4}
    ) == [
        {"metric": "recall", "k": 20, "value": 0.5, "previous": 0.4, "change": 0.1},
        {"metric": "ndcg", "k": 20, "value": 0.2512, "previous": None, "change": None},
        {"metric": "hit_rate", "k": 20, "value": 0.75, "previous": None, "change": None},
        {"metric": "recall", "k": 10, "value": 0.2, "previous": None, "change": None},
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start", "2026-01-05", "--end", "2026-01-01"], "gnnrec backfill: error: end 2026-01-01 is before start 2026-01-05"),
        (["--start", "2026-01-01"], "gnnrec backfill: error: --end: Field required"),
        (["--start", "2026-01-01", "--end", "2026-01-02", "--publish", "some"], "gnnrec backfill: error: --publish: Input should be 'every' or 'last'"),
    ],
    ids=["end-before-start", "no-end", "bad-publish"],
)
def test_backfill_option_errors_are_one_line_and_exit_code_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["backfill", "--landing", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(message), err


def test_a_failed_run_is_recorded_with_its_error_and_the_stages_it_reached(prefect_harness, tmp_path):
    db, missing = tmp_path / "gnnrec.duckdb", tmp_path / "no-landing"
    with pytest.raises(ValueError, match="does not exist"):
        run_daily(DailyParams(ds=START, landing=missing, db=db, analytics=tmp_path / "analytics.duckdb"))
    with duckdb.connect(str(db), read_only=True) as con:
        (status, message, stages, finished), = con.execute("select status, message, stage_seconds, finished_at from ops.runs").fetchall()
    assert (status, message) == ("failed", f"LandingError: landing folder {missing} does not exist")
    assert set(json.loads(stages)) == {"ingest"} and finished is not None
    assert not (tmp_path / "analytics.duckdb").exists()


def test_each_backfill_day_is_a_flow_run_of_its_own_named_after_its_day(backfilled):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    params, first, _, _ = backfilled
    # later tests in this module backfill the same warehouse again, so only the first backfill's runs are looked at
    first_runs = [result.run_id for result in first.completed]
    with duckdb.connect(str(params.db), read_only=True) as con:
        day_runs = dict(con.execute("select ds, flow_run_id from ops.runs where run_id in ?", [first_runs]).fetchall())
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(day_runs.values()))))
        (parent,) = {client.read_task_run(run.parent_task_run_id).flow_run_id for run in runs}
        backfill = client.read_flow_run(parent)
    # the first backfill ingested the first three days and trained on the last: four day runs under one backfill
    assert sorted(run.name for run in runs) == [f"ingest-{day}" for day in DAYS[:-1]] + [f"mf-{DAYS[-1]}"]
    assert backfill.name == f"backfill-mf-{DAYS[0]}-{DAYS[-1]}"
