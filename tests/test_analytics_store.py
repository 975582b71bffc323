"""The analysts' store built from a hand-made warehouse: views only, exact files, and every example query in
sql/analyst/ with values worked out by hand; a folder that works wherever it is put, that the DuckDB 1.5 command
line opens, with a comment on every view and column; and checkpoints kept for the newest runs only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from gnnrec.flows.cli import main
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.publish.analytics import VIEWS_FILE, default_store, open_store, partition_dir, publish_store, store_dir
from gnnrec.tasks.ops.checkpoints import checkpoint_dir, prune_checkpoints, runs_to_prune
from gnnrec.tasks.publish.data_dictionary import COLUMNS, METRIC_KS, VIEWS
from gnnrec.tasks.ops.db import connect

ANALYST_SQL = Path(__file__).resolve().parents[1] / "sql" / "analyst"
# The DuckDB command line of the duckdb-cli package (a dev extra), installed beside this Python.
DUCKDB_CLI = Path(sys.executable).parent / "duckdb"
D1, D2 = date(2026, 1, 1), date(2026, 1, 2)

# (ds, model, run_id) -> {user: [items by rank]}; K = 2
LISTS = {
    (D1, "mf", "r1"): {"a": ["i1", "i2"], "b": ["i1", "i3"]},
    (D2, "mf", "r2"): {"a": ["i1", "i4"], "b": ["i1", "i2"]},
    (D2, "pop", "r3"): {"a": ["i1", "i2"], "b": ["i1", "i2"]},
}
# i5 joins the catalog on D2: D1's catalog has 4 items, D2's has 5
ITEMS = [("i1", D1), ("i2", D1), ("i3", D1), ("i4", D1), ("i5", D2)]
METRICS = {"r2": {"recall": 0.5, "ndcg": 0.25}, "r3": {"recall": 0.3, "ndcg": 0.2}}


def _warehouse(db: Path) -> None:
    with connect(db) as con:
        for index, (item, first_ds) in enumerate(ITEMS):
            con.execute("insert into graph.item_ids values (?, ?, ?)", [item, index, first_ds])
        for (ds, model, run_id), lists in LISTS.items():
            started = datetime(ds.year, ds.month, ds.day, 3, 0, 0 if model == "mf" else 30)
            con.execute(
                "insert into ops.runs (run_id, flow, ds, model, params, status, started_at, finished_at) "
                "values (?, 'daily-recommendations', ?, ?, '{}', 'completed', ?, ?)",
                [run_id, ds, model, started, started + timedelta(minutes=5)],
            )
            for user, items in lists.items():
                for rank, item in enumerate(items, start=1):
                    con.execute("insert into recs.topk values (?, ?, ?, ?, ?, ?, ?)", [ds, model, run_id, user, rank, item, 1.0 / rank])
            con.execute("insert into recs.publications values (?, ?, ?, ?, 2, 4)", [ds, model, run_id, started])
        for run_id, values in METRICS.items():
            for metric, value in values.items():
                con.execute("insert into ops.metrics (run_id, metric, k, value) values (?, ?, 20, ?)", [run_id, metric, value])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    _warehouse(root / "gnnrec.duckdb")
    with connect(root / "gnnrec.duckdb") as con:
        summary = publish_store(con, default_store(root / "gnnrec.duckdb"))
    assert (summary.partitions, summary.exported) == (3, 3)
    return default_store(root / "gnnrec.duckdb")


def _run(store: Path, query: str, user: str | None = None) -> list[tuple]:
    with open_store(store) as con:
        if user is not None:
            con.execute("set variable user_id = ?", [user])
        return con.execute((ANALYST_SQL / query).read_text(encoding="utf-8")).fetchall()


def test_the_store_is_a_folder_beside_the_warehouse(store: Path):
    assert store == store.parent.parent / "gnnrec.analytics" / "views.duckdb"
    assert store_dir(store) == store.parent
    assert sorted(p.name for p in store.parent.iterdir()) == ["items", "metrics", "publications", "runs", "topk", "views.duckdb"]


def test_store_holds_views_only_over_one_file_per_partition(store: Path):
    with open_store(store) as con:
        tables = con.execute("select count(*) from duckdb_tables()").fetchone()[0]
        views = {f"{s}.{v}" for s, v in con.execute("select schema_name, view_name from duckdb_views() where not internal").fetchall()}
        rows = con.execute("select ds, model, run_id, user_id, rank, item_id from recs.topk order by all").fetchall()
    assert tables == 0
    assert views == {"recs.topk", "recs.latest_topk", "recs.publications", "ops.runs", "ops.metrics", "catalog.items"}
    expected = sorted(
        (ds, model, run_id, user, rank, item)
        for (ds, model, run_id), lists in LISTS.items()
        for user, items in lists.items()
        for rank, item in enumerate(items, start=1)
    )
    assert rows == expected
    assert sorted(p.name for p in partition_dir(store_dir(store), D2, "mf").iterdir()) == ["r2.parquet"]


def test_user_recommendations(store: Path):
    rows = _run(store, "user_recommendations.sql", user="a")
    # (ds, model, user, rank, item, score, users it is recommended to in that list)
    assert rows == [
        (D2, "mf", "a", 1, "i1", 1.0, 2), (D2, "mf", "a", 2, "i4", 0.5, 1),
        (D2, "pop", "a", 1, "i1", 1.0, 2), (D2, "pop", "a", 2, "i2", 0.5, 2),
    ]


def test_coverage(store: Path):
    assert _run(store, "coverage.sql") == [
        (D1, "mf", 3, 4, 0.75),  # i1 i2 i3 of 4
        (D2, "mf", 3, 5, 0.6),  # i1 i2 i4 of 5
        (D2, "pop", 2, 5, 0.4),  # i1 i2 of 5
    ]


def test_popularity_gini(store: Path):
    rows = {(ds, model): (n, gini) for ds, model, n, gini in _run(store, "popularity_gini.sql")}
    # sorted slot counts x_1..x_n, G = 2 * sum(i * x_i) / (n * sum x) - (n + 1) / n
    assert rows[(D1, "mf")] == (4, pytest.approx(2 * 13 / 16 - 5 / 4))  # [0, 1, 1, 2] -> 0.375
    assert rows[(D2, "mf")] == (5, pytest.approx(2 * 17 / 20 - 6 / 5))  # [0, 0, 1, 1, 2] -> 0.5
    assert rows[(D2, "pop")] == (5, pytest.approx(2 * 18 / 20 - 6 / 5))  # [0, 0, 0, 2, 2] -> 0.6


def test_overlap_with_yesterday(store: Path):
    # mf on D2 against D1: a keeps i1 of (i1, i4); b keeps i1 of (i1, i2). pop has no list for D1.
    assert _run(store, "overlap_with_yesterday.sql") == [(D2, "mf", "a", 1, 2, 0.5), (D2, "mf", "b", 1, 2, 0.5)]
    assert _run(store, "overlap_with_yesterday.sql", user="b") == [(D2, "mf", "b", 1, 2, 0.5)]


def test_model_comparison(store: Path):
    rows = _run(store, "model_comparison.sql")
    assert [(model, ds, run_id, recall, ndcg) for model, ds, run_id, recall, ndcg, *_ in rows] == [
        ("mf", D2, "r2", 0.5, 0.25), ("pop", D2, "r3", 0.3, 0.2),
    ]


def _republish_pop(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Hand the pop partition to a new completed run (the store serves publications of completed runs only)."""
    con.execute(
        "insert into ops.runs select * replace (? as run_id) from ops.runs where run_id = 'r3'", [run_id]
    )
    con.execute("update recs.topk set run_id = ? where model = 'pop'", [run_id])
    con.execute("update recs.publications set run_id = ? where model = 'pop'", [run_id])


def test_republishing_keeps_the_previous_generation_and_prunes_older_ones(tmp_path: Path):
    db = tmp_path / "gnnrec.duckdb"
    analytics = default_store(db)
    _warehouse(db)
    folder = partition_dir(store_dir(analytics), D2, "pop")
    for generation in ("r4", "r5", "r6"):
        with connect(db) as con:
            _republish_pop(con, generation)
            publish_store(con, analytics, grace=timedelta(0))
        # make the generations' ages distinct on coarse file-system clocks
        older = time.time() - 10
        for path in folder.iterdir():
            if path.stem != generation:
                os.utime(path, (older, older))
    assert sorted(p.name for p in folder.iterdir()) == ["r5.parquet", "r6.parquet"]
    with open_store(analytics) as con:
        assert con.execute("select distinct run_id from recs.topk where model = 'pop'").fetchall() == [("r6",)]
    # a grace period keeps superseded files even beyond the previous generation
    with connect(db) as con:
        _republish_pop(con, "r7")
        publish_store(con, analytics, grace=timedelta(hours=1))
    assert sorted(p.name for p in folder.iterdir()) == ["r5.parquet", "r6.parquet", "r7.parquet"]


# --- where the store is, and who can open it --------------------------------------------------------------------


def test_the_default_store_belongs_to_the_warehouse(tmp_path: Path):
    assert default_store(Path("data/gowalla.duckdb")) == Path("data/gowalla.analytics/views.duckdb")
    assert DailyParams().analytics == Path("data/gnnrec.analytics/views.duckdb")
    params = DailyParams(db=tmp_path / "w.duckdb")
    assert params.analytics == tmp_path / "w.analytics" / VIEWS_FILE
    # a store named as its folder means its views file
    (tmp_path / "s").mkdir()
    assert DailyParams(db=tmp_path / "w.duckdb", analytics=tmp_path / "s").analytics == tmp_path / "s" / VIEWS_FILE
    # the store folder holds its own views file: no clash; the warehouse inside the store folder is one
    with pytest.raises(ValueError, match="--analytics: the analysts' Parquet folder .* contains the warehouse"):
        DailyParams(db=tmp_path / "s" / "w.duckdb", analytics=tmp_path / "s" / VIEWS_FILE)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert DUCKDB_CLI.is_file(), f"no DuckDB command line at {DUCKDB_CLI}: pip install -e '.[dev]' (duckdb-cli)"
    return subprocess.run([str(DUCKDB_CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_duckdb_command_line_opens_the_store(store: Path, tmp_path: Path):
    assert _cli("--version", cwd=tmp_path).stdout.startswith("v1.")  # duckdb-cli: 1.5.6, which refuses DuckDB 2.0 files
    query = "select model, count(*) from recs.latest_topk group by model order by model"
    # from inside the store's folder, as the README says
    inside = _cli("-readonly", "-csv", VIEWS_FILE, "-c", query, cwd=store.parent)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split() == ["model,count_star()", "mf,4", "pop,4"]
    # from anywhere, with the folder as the search path
    elsewhere = _cli("-readonly", "-csv", "-cmd", f"set file_search_path = '{store.parent}'", str(store), "-c", query, cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout == inside.stdout
    # and the CLI sees the data dictionary
    comment = _cli("-readonly", "-csv", "-noheader", VIEWS_FILE, "-c",
                   "select comment from duckdb_columns() where table_name = 'topk' and column_name = 'score'", cwd=store.parent)
    assert "preference score" in comment.stdout, comment.stderr


def test_a_copied_store_works_after_the_original_is_gone(tmp_path: Path):
    db = tmp_path / "origin" / "gnnrec.duckdb"
    db.parent.mkdir()
    _warehouse(db)
    with connect(db) as con:
        publish_store(con, default_store(db))
    expected = _run(default_store(db), "coverage.sql")
    moved = tmp_path / "elsewhere" / "mounted-store"
    shutil.copytree(default_store(db).parent, moved)
    shutil.rmtree(tmp_path / "origin")
    assert _run(moved, "coverage.sql") == expected  # the folder, opened by gnnrec's own opener
    with duckdb.connect(str(moved / VIEWS_FILE), read_only=True, config={"file_search_path": str(moved)}) as con:
        assert con.execute("select count(*) from recs.topk").fetchone() == (12,)
    cli = _cli("-readonly", "-csv", "-noheader", VIEWS_FILE, "-c", "select count(*) from recs.topk", cwd=moved)
    assert (cli.returncode, cli.stdout.strip()) == (0, "12"), cli.stderr
    with duckdb.connect(str(moved / VIEWS_FILE), read_only=True) as con:
        sql = con.execute("select string_agg(sql, ' ') from duckdb_views() where not internal").fetchone()[0]
    assert str(tmp_path) not in sql and "read_parquet" in sql  # no absolute path anywhere


# --- the data dictionary ----------------------------------------------------------------------------------------


def test_every_view_and_column_has_a_comment(store: Path):
    with open_store(store) as con:
        views = dict(con.execute(
            "select schema_name || '.' || view_name, comment from duckdb_views() where not internal").fetchall())
        columns = con.execute(
            "select schema_name || '.' || table_name, column_name, data_type, comment from duckdb_columns() "
            "where not internal and database_name = current_database()"
        ).fetchall()
    assert set(views) == set(VIEWS) == set(COLUMNS)
    assert all(views.values())
    uncommented = [(view, column) for view, column, _, comment in columns if not comment]
    assert uncommented == []
    types = {(view, column): kind for view, column, kind, _ in columns}
    for column in ("params", "input_files", "library_versions", "stage_seconds"):
        assert types[("ops.runs", column)] == "JSON"
    with open_store(store) as con:
        assert con.execute("select params->>'$' from ops.runs limit 1").fetchone() == ("{}",)


def test_the_dictionary_names_the_metrics_the_pipeline_computes():
    from gnnrec.tasks.learn.evaluate import METRIC_KS as computed
    from gnnrec.tasks.learn.metrics import ranking_metrics

    assert METRIC_KS == computed
    metrics = ranking_metrics(np.array([[0, 1]]), [np.array([1])], (1, 2))
    for name in {metric for metric, _ in metrics}:
        assert name in COLUMNS["ops.metrics"]["metric"]


def test_query_describe_prints_the_dictionary(store: Path, capsys):
    assert main(["query", "--describe", "--analytics", str(store.parent)]) == 0
    out = capsys.readouterr().out
    assert "recs.topk: every published list" in out
    assert "  score " in out and "a click model a logit" in out
    assert "  params " in out and "JSON" in out


def test_query_reads_the_store_of_db_by_default(store: Path, capsys, monkeypatch):
    monkeypatch.chdir(store.parent.parent)  # where gnnrec.duckdb is: --db gnnrec.duckdb -> gnnrec.analytics/
    sql = ANALYST_SQL / "user_recommendations.sql"
    assert main(["query", str(sql), "--db", "gnnrec.duckdb", "--set", "user_id=b"]) == 0
    out = capsys.readouterr().out
    assert "│ b       │" in out and "│ a       │" not in out


def test_every_shipped_analyst_query_runs_through_the_cli(store: Path, capsys):
    for sql in sorted(ANALYST_SQL.glob("*.sql")):
        assert main(["query", str(sql), "--analytics", str(store)]) == 0, sql.name
    capsys.readouterr()


def test_query_errors_are_one_line(store: Path, tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as missing:
        main(["query", str(ANALYST_SQL / "coverage.sql"), "--db", str(tmp_path / "none.duckdb")])
    assert missing.value.code == 2
    assert capsys.readouterr().err == (f"gnnrec query: error: --analytics: no analysts' store at "
                                       f"{tmp_path / 'none.analytics' / VIEWS_FILE}; `gnnrec run` publishes one\n")
    bad = tmp_path / "bad.sql"
    bad.write_text("select * from recs.no_such_view", encoding="utf-8")
    assert main(["query", str(bad), "--analytics", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gnnrec query: error: {bad}: Catalog Error: Table with name no_such_view does not exist")
    assert err.count("\n") == 1


# --- checkpoints --------------------------------------------------------------------------------------------------


def test_runs_to_prune_keeps_the_newest_completed_and_never_a_running_one():
    runs = [("r9", "running"), ("r8", "failed"), ("r7", "completed"), ("r6", "completed"), ("r5", "failed"),
            ("r4", "running"), ("r3", "completed"), ("r2", "abandoned"), ("r1", "completed")]  # newest first
    assert runs_to_prune(runs, 2) == ["r5", "r3", "r2", "r1"]
    assert runs_to_prune(runs, 3) == ["r2", "r1"]
    assert runs_to_prune(runs, 9) == []
    assert runs_to_prune(runs, 0) == ["r8", "r7", "r6", "r5", "r3", "r2", "r1"]


def test_prune_checkpoints_deletes_the_folders_of_older_runs_of_the_model(tmp_path: Path):
    db = tmp_path / "gnnrec.duckdb"
    started = datetime(2026, 1, 1, 3)
    runs = [("m1", "mf", "completed"), ("p1", "pop", "completed"), ("m2", "mf", "failed"), ("m3", "mf", "completed"),
            ("m4", "mf", "running"), ("m5", "mf", "completed")]
    with connect(db) as con:
        for minute, (run_id, model, status) in enumerate(runs):
            con.execute(
                "insert into ops.runs (run_id, flow, ds, model, params, status, started_at) "
                "values (?, 'daily-recommendations', ?, ?, '{}', ?, ?)",
                [run_id, D1, model, status, started + timedelta(minutes=minute)],
            )
    for run_id, _, _ in runs:
        checkpoint_dir(db, run_id).mkdir(parents=True)
        (checkpoint_dir(db, run_id) / "final.pt").write_bytes(b"weights")
    with connect(db) as con:
        assert prune_checkpoints(con, db, "mf", keep=2) == ["m2", "m1"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["m3", "m4", "m5", "p1"]
    with connect(db) as con:
        assert prune_checkpoints(con, db, "mf", keep=2) == []  # idempotent
        assert prune_checkpoints(con, db, "mf", keep=0) == ["m5", "m3"]  # never m4: it is running
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["m4", "p1"]
