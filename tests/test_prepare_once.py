"""One prepared day, many models: a three-model run ingests and validates each file once, reads the interaction
history once, and publishes what three one-model runs publish."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest

from gnnrec.flows.daily import run_daily
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.graph import snapshot as snapshot_module
from gnnrec.tasks.data.demo import generate_demo_world

START = date(2026, 5, 1)
TINY = {"top_k": 10, "epochs": 2, "embedding_dim": 8}


def _published(db, model: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select user_id, rank, item_id, score from recs.latest_topk where model = ? order by all", [model]).fetchall()


@pytest.fixture(scope="module")
def three_models(prefect_harness, tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare-once")
    landing = root / "landing"
    days = generate_demo_world(landing, start=START, days=3, users=120, items=80, seed=9).days
    reads: list[date] = []
    original = snapshot_module.load_interaction_pairs
    snapshot_module.load_interaction_pairs = lambda con, ds: reads.append(ds) or original(con, ds)
    try:
        combined = DailyParams(ds=days[-1], model="lightgcn,mf,pop", landing=landing, db=root / "all" / "gnnrec.duckdb",
                               analytics=root / "all" / "analytics.duckdb", **TINY)  # fmt: skip
        result = run_daily(combined)
        reads_of_combined = list(reads)
        singles = {}
        for model in ("lightgcn", "mf", "pop"):
            params = combined.model_copy(update={"model": model, "db": root / model / "gnnrec.duckdb", "analytics": root / model / "analytics.duckdb"})
            singles[model] = run_daily(params)
    finally:
        snapshot_module.load_interaction_pairs = original
    return combined, result, reads_of_combined, singles


def test_three_models_share_one_preparation(three_models):
    combined, result, reads, _ = three_models
    assert [run.model for run in result.runs] == ["lightgcn", "mf", "pop"]
    assert reads == [combined.ds]  # the interaction history is read once for the day
    with duckdb.connect(str(combined.db), read_only=True) as con:
        files = con.execute("select path, count(*) from ops.ingest_files group by path having count(*) > 1").fetchall()
        runs = con.execute("select model, status, stage_seconds from ops.runs order by started_at, model").fetchall()
    assert files == []  # every landed file ingested once
    assert sorted((model, status) for model, status, _ in runs) == [("lightgcn", "completed"), ("mf", "completed"), ("pop", "completed")]
    stages = {model: set(json.loads(seconds)) for model, _, seconds in runs}
    assert {"ingest", "validate", "build_graph"} <= stages["lightgcn"]  # the first model's run prepared the day
    assert not {"ingest", "validate", "build_graph"} & (stages["mf"] | stages["pop"])  # the others reused it


def test_each_model_publishes_what_its_own_run_would(three_models):
    combined, result, _, singles = three_models
    for model, single in singles.items():
        assert _published(combined.db, model) == _published(single.db, model) != []
        assert result.runs[[r.model for r in result.runs].index(model)].metrics == single.metrics


def test_an_unknown_or_repeated_model_is_refused():
    with pytest.raises(ValueError, match="unknown model 'ngcf-x'"):
        DailyParams(model="lightgcn,ngcf-x")
    with pytest.raises(ValueError, match="named twice"):
        DailyParams(model="mf,mf")
    assert DailyParams(model="lightgcn, mf").models == ("lightgcn", "mf")
