"""The analysts' store's data dictionary: what every view and column means, written into the views file as
``COMMENT ON`` so that DuckDB itself shows it (``duckdb_views()``, ``duckdb_columns()``, ``gnnrec query --describe``).

A column the pipeline adds to a table without describing it here is still published, uncommented;
``tests/test_analytics_store.py`` fails until it is described.
"""

from __future__ import annotations

import duckdb

METRIC_KS = (10, 20, 50)  # tasks.learn.evaluate.METRIC_KS (not imported: it brings torch); a test keeps them equal
_METRICS = "recall, precision, ndcg, hit_rate, mrr"
_KS = ", ".join(map(str, METRIC_KS))

SCORE = (
    "the model's score of the item for the user; higher ranks first, and only its order within one list means "
    "anything. Per kind of model: a ranking model publishes a preference score (pop: the item's number of distinct "
    "training users, the same for everyone; mf and lightgcn: the inner product of the user's and the item's "
    "embeddings, unbounded); a rating model would publish a predicted rating, a click model a logit"
)

VIEWS: dict[str, str] = {
    "recs.topk": "every published list: one row per (ds, model, user, rank), from the completed run that published "
    "the (ds, model); a republished (ds, model) shows its newest run only",
    "recs.latest_topk": "each model's newest day published by a completed run: what is served today",
    "recs.publications": "one row per published (ds, model): the completed run that published it, when, and its size",
    "ops.runs": "the run registry: one row per run of the daily flow (one per model and day; a backfill's days are "
    "runs of their own), with its parameters, inputs, status and timings",
    "ops.metrics": f"holdout metrics of each evaluated run: {_METRICS} at k = {_KS}, each the mean over the "
    "held-out users with at least one relevant item (see README, Metric definitions)",
    "catalog.items": "every item of the catalog and the first day it was seen; day D's catalog is the items with "
    "first_ds <= D",
}

_DS = "the day the list is for (the run's --ds): trained on data up to and including it"
_RUN_ID = "the run that produced it (ops.runs.run_id)"
_MODEL = "the model's name: pop (popularity), mf (matrix factorisation, BPR) or lightgcn (LightGCN)"
_TOPK = {
    "ds": _DS, "model": _MODEL, "run_id": _RUN_ID,
    "user_id": "the user's external id, as landed",
    "rank": "1 = best; 1..K with K the run's top_k",
    "item_id": "the recommended item's external id, as landed (catalog.items.item_id)",
    "score": SCORE,
}

COLUMNS: dict[str, dict[str, str]] = {
    "recs.topk": _TOPK,
    "recs.latest_topk": _TOPK,
    "recs.publications": {
        "ds": _DS, "model": _MODEL, "run_id": _RUN_ID,
        "published_at": "when the list was written to the warehouse (UTC)",
        "users": "users with a list", "rows": "rows of the list (users x K)",
    },
    "ops.runs": {
        "run_id": "the run's id (hex uuid)",
        "flow": "the flow that ran it: daily-recommendations or backfill-recommendations",
        "ds": "the day the run processed", "model": _MODEL,
        "params": "JSON: every parameter of the run (the gnnrec run options), plus train (whether it trained)",
        "status": "running, completed, failed or abandoned (its process died; found by a later run)",
        "message": "why it failed or was abandoned; null otherwise",
        "started_at": "when it started (UTC)", "finished_at": "when it completed or failed (UTC); null while running",
        "inputs_digest": "sha256 over the (source, path, sha256) of every file ingested for the days up to ds: equal digests, equal inputs",
        "input_files": "JSON: the day's own ingested files, path -> sha256",
        "code_version": "the git commit the code ran from (+dirty when tracked files had changed); null outside a checkout",
        "library_versions": "JSON: library -> version, for python and the libraries the results depend on",
        "seed": "the random seed (runs are deterministic on CPU)",
        "device": "the torch device it trained on: cpu or cuda",
        "stage_seconds": "JSON: seconds spent in each stage (ingest, validate, build_graph, train, evaluate, "
        "publish, analytics)",
        "flow_run_id": "the Prefect flow run it belongs to (its id in the Prefect API and UI; the runs of several "
        "models of one day share one, each backfill day has its own); null for a run made outside Prefect",
    },
    "ops.metrics": {
        "run_id": "the evaluated run (ops.runs.run_id); only runs with a holdout (--eval-days >= 1) have metrics",
        "metric": f"one of {_METRICS}",
        "k": f"the list length a ranking metric is cut at: one of {_KS}; null for a metric without one (auc, f1, "
        "mae, rmse)",
        "value": "the metric's value: a ranking metric's mean over the held-out users with at least one relevant item "
        "(in [0, 1]); mae and rmse on the rating scale",
        "protocol": "how the holdout was scored: full (every unseen item ranked), sampled:N (each user's positives "
        "against N sampled unobserved items), ctr (each positive paired with one sampled negative: auc, f1) or "
        "rating (mae, rmse over the test ratings)",
    },
    "catalog.items": {
        "item_id": "the item's external id, as landed",
        "first_ds": "the first day the item was seen in any source",
    },
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_statements(con: duckdb.DuckDBPyConnection) -> list[str]:
    """``COMMENT ON`` statements for the views of ``con`` and each of their columns that the dictionary describes."""
    statements = []
    views = con.execute(
        "select schema_name || '.' || view_name from duckdb_views() where not internal and database_name = current_database()"
    ).fetchall()
    for (view,) in views:
        if view in VIEWS:
            statements.append(f"comment on view {view} is {_quote(VIEWS[view])}")
        described = COLUMNS.get(view, {})
        columns = con.execute(
            "select column_name from duckdb_columns() where schema_name || '.' || table_name = ? "
            "and database_name = current_database()", [view],
        ).fetchall()
        for (column,) in columns:
            if column in described:
                statements.append(f'comment on column {view}."{column}" is {_quote(described[column])}')
    return statements


def describe(con: duckdb.DuckDBPyConnection) -> str:
    """The dictionary as the store holds it: each view's comment, then its columns with type and comment."""
    lines = []
    views = con.execute(
        "select schema_name || '.' || view_name, comment from duckdb_views() where not internal "
        "and database_name = current_database() order by all"
    ).fetchall()
    for view, comment in views:
        lines.append(f"{view}: {comment or ''}")
        columns = con.execute(
            "select column_name, data_type, comment from duckdb_columns() where schema_name || '.' || table_name = ? "
            "and database_name = current_database() order by column_index", [view],
        ).fetchall()
        width = max(len(name) for name, _, _ in columns)
        type_width = max(len(kind) for _, kind, _ in columns)
        lines += [f"  {name:<{width}}  {kind:<{type_width}}  {text or ''}" for name, kind, text in columns]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
