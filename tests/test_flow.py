"""The daily flow end to end under a throw-away Prefect API: assert the rows it publishes and records."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import numpy as np
import pytest

from gnnrec.flows.daily import run_daily
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.data.demo import generate_demo_world

DS = date(2026, 3, 6)
STABLE_TABLES = [
    "raw.interactions", "raw.social", "raw.kg", "raw.item_entities",
    "clean.interactions", "clean.social", "clean.kg", "clean.item_entities",
    "quarantine.interactions", "ops.ingest_files",
    "graph.user_ids", "graph.item_ids", "graph.entity_ids", "graph.relation_ids",
]


def _snapshot(db, tables):
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables}


@pytest.fixture(scope="module")
def two_runs(prefect_harness, tmp_path_factory):
    """The same day run twice with LightGCN, then once with popularity."""
    root = tmp_path_factory.mktemp("flow")
    landing, db = root / "landing", root / "data" / "gnnrec.duckdb"
    world = generate_demo_world(landing, start=date(2026, 3, 1), days=6, users=300, items=150, seed=5)
    params = DailyParams(ds=DS, model="lightgcn", top_k=20, epochs=4, embedding_dim=16, landing=landing, db=db)
    first = run_daily(params)
    after_first = _snapshot(db, STABLE_TABLES + ["recs.topk"])
    second = run_daily(params)
    after_second = _snapshot(db, STABLE_TABLES + ["recs.topk"])
    pop = run_daily(params.model_copy(update={"model": "pop"}))
    return world, db, (first, second, pop), after_first, after_second


def test_publishes_top_k_per_user_with_external_ids(two_runs):
    world, db, (first, second, _), _, _ = two_runs
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select user_id, rank, item_id, score, run_id from recs.topk where ds = ? and model = 'lightgcn' order by user_id, rank",
            [DS],
        ).fetchall()
        active_users = {u for (u,) in con.execute("select distinct user_id from clean.interactions where ds <= ?", [DS]).fetchall()}
        seen = set(con.execute("select user_id, item_id from clean.interactions where ds <= ?", [DS]).fetchall())
        catalog = {i for (i,) in con.execute("select item_id from graph.item_ids where first_ds <= ?", [DS]).fetchall()}
    by_user: dict[str, list] = {}
    for user, rank, item, score, run_id in rows:
        by_user.setdefault(user, []).append((rank, item, score))
        assert run_id == second.run_id  # the second run replaced the first
    assert set(by_user) == active_users
    for user, recs in by_user.items():
        unseen = len(catalog) - sum(1 for (u, _) in seen if u == user)
        assert len(recs) == min(20, unseen)
        assert [r for r, _, _ in recs] == list(range(1, len(recs) + 1))
        scores = [s for _, _, s in recs]
        assert scores == sorted(scores, reverse=True)
        assert len({i for _, i, _ in recs}) == len(recs)
        assert not any((user, item) in seen for _, item, _ in recs)
    # external ids only: the generator's own id spelling, never an index
    assert all(u.startswith("u-") for u in by_user)
    assert all(item.startswith("sku-") for _, _, item, _, _ in rows)
    assert second.published.users == len(active_users) and second.published.rows == len(rows)


def test_rerunning_a_day_leaves_identical_tables(two_runs):
    _, _, _, after_first, after_second = two_runs
    for table in STABLE_TABLES:
        assert after_first[table] == after_second[table], table
    drop_run_id = lambda rows: [row[:2] + row[3:] for row in rows]  # noqa: E731 - (ds, model, run_id, ...)
    assert drop_run_id(after_first["recs.topk"]) == drop_run_id(after_second["recs.topk"])


def test_runs_and_metrics_are_recorded(two_runs):
    _, db, (first, second, pop), _, _ = two_runs
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("select run_id, flow, ds, model, params, status, finished_at from ops.runs order by started_at").fetchall()
        metrics = con.execute("select run_id, metric, k, value from ops.metrics order by run_id, metric, k").fetchall()
        latest = con.execute("select model, count(distinct run_id), min(ds) from recs.latest_topk group by model order by model").fetchall()
    assert [r[0] for r in runs] == [first.run_id, second.run_id, pop.run_id]
    for run_id, flow, ds, model, params, status, finished_at in runs:
        assert (flow, ds, status) == ("daily-recommendations", DS, "completed") and finished_at is not None
        assert json.loads(params)["model"] == model and json.loads(params)["epochs"] == 4
    expected_keys = {(m, k) for m in ("recall", "ndcg", "precision", "hit_rate", "mrr") for k in (10, 20, 50)}
    for result in (first, second, pop):
        recorded = {(m, k): v for run_id, m, k, v in metrics if run_id == result.run_id}
        assert set(recorded) == expected_keys
        assert recorded == pytest.approx(result.metrics)
        assert all(0.0 <= v <= 1.0 for v in recorded.values())
    assert first.metrics == second.metrics  # seeded and deterministic on CPU
    assert latest == [("lightgcn", 1, DS), ("pop", 1, DS)]


def test_each_run_is_named_after_its_model_and_day_and_recorded_with_its_flow_run(two_runs):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    _, db, (first, second, pop), _, _ = two_runs
    with duckdb.connect(str(db), read_only=True) as con:
        recorded = dict(con.execute("select run_id, flow_run_id from ops.runs").fetchall())
    ids = [recorded[result.run_id] for result in (first, second, pop)]
    assert len(set(ids)) == 3 and None not in ids
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    assert sorted(run.name for run in runs) == [f"lightgcn-{DS}", f"lightgcn-{DS}", f"pop-{DS}"]
    # the flow run carries each option as a parameter of its own, the models as a list
    assert sorted(run.parameters["model"] for run in runs) == [["lightgcn"], ["lightgcn"], ["pop"]]
    assert all(run.parameters["top_k"] == 20 and run.parameters["epochs"] == 4 for run in runs)


def test_gcmc_implicit_publishes_in_taste_lists_from_a_day_without_ratings(prefect_harness, tmp_path):
    """An implicit dataset like Gowalla (the lightgcn importer: check-ins, no rating column) refuses ``gcmc`` and
    runs ``gcmc-implicit``. 4 taste clusters of 20 items; each user trained on 8 items of their cluster and tests
    on 2 more, so 10 of their cluster's items are left to recommend: the published top 5 should come from them."""
    from gnnrec.tasks.data.importers import import_dataset

    rng = np.random.default_rng(3)
    folder, clusters, per_cluster, users = tmp_path / "checkins", 4, 20, 80
    folder.mkdir()
    train, test = [], []
    for user in range(users):
        liked = (user % clusters) * per_cluster + rng.permutation(per_cluster)[:10]
        train.append(f"{user} " + " ".join(map(str, liked[:8])))
        test.append(f"{user} " + " ".join(map(str, liked[8:])))
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test.txt").write_text("\n".join(test) + "\n")
    ds = date(2020, 1, 2)
    landing, db = tmp_path / "landing", tmp_path / "gnnrec.duckdb"
    import_dataset("lightgcn", folder, landing, day=ds)
    params = DailyParams(ds=ds, model="gcmc-implicit", top_k=5, epochs=5, landing=landing, db=db)
    with pytest.raises(ValueError, match="model 'gcmc' needs ratings data"):
        run_daily(params.model_copy(update={"model": "gcmc"}))
    result = run_daily(params)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select user_id, rank, item_id, score from recs.topk where model = 'gcmc-implicit' "
                           "order by user_id, rank").fetchall()
        seen = set(con.execute("select user_id, item_id from clean.interactions").fetchall())
        recorded = {m for (m,) in con.execute("select distinct metric from ops.metrics where run_id = ?", [result.run_id]).fetchall()}
    by_user: dict[str, list] = {}
    for user, rank, item, score in rows:
        by_user.setdefault(user, []).append((rank, item, score))
    assert set(by_user) == {str(u) for u in range(users)}
    for user, recs in by_user.items():
        assert [r for r, _, _ in recs] == [1, 2, 3, 4, 5]
        assert [s for _, _, s in recs] == sorted((s for _, _, s in recs), reverse=True)
        assert not any((user, item) in seen for _, item, _ in recs)
    in_cluster = np.mean([int(item) // per_cluster == int(user) % clusters for user, _, item, _ in rows])
    assert in_cluster > 0.9, in_cluster  # popularity would put about a quarter of them there
    assert {"recall", "ndcg"} <= recorded and "rmse" not in recorded  # judged as a ranking model
