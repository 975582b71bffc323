"""The analysts' store built from a hand-made warehouse: views only, exact files, and every example query in
sql/analyst/ with values worked out by hand."""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tasks.analytics import partition_dir, publish_store, store_dir
from tasks.db import connect

ANALYST_SQL = Path(__file__).resolve().parents[1] / "sql" / "analyst"
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
        summary = publish_store(con, root / "analytics.duckdb")
    assert (summary.partitions, summary.exported) == (3, 3)
    return root / "analytics.duckdb"


def _run(store: Path, query: str, user: str | None = None) -> list[tuple]:
    with duckdb.connect(str(store), read_only=True) as con:
        if user is not None:
            con.execute("set variable user_id = ?", [user])
        return con.execute((ANALYST_SQL / query).read_text(encoding="utf-8")).fetchall()


def test_store_holds_views_only_over_one_file_per_partition(store: Path):
    with duckdb.connect(str(store), read_only=True) as con:
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
    db, analytics = tmp_path / "gnnrec.duckdb", tmp_path / "analytics.duckdb"
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
    with duckdb.connect(str(analytics), read_only=True) as con:
        assert con.execute("select distinct run_id from recs.topk where model = 'pop'").fetchall() == [("r6",)]
    # a grace period keeps superseded files even beyond the previous generation
    with connect(db) as con:
        _republish_pop(con, "r7")
        publish_store(con, analytics, grace=timedelta(hours=1))
    assert sorted(p.name for p in folder.iterdir()) == ["r5.parquet", "r6.parquet", "r7.parquet"]
