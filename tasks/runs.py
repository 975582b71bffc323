"""The run registry: ``ops.runs`` (one row per flow run) and ``ops.metrics`` (its evaluation figures)."""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import pyarrow as pa

from tasks.db import sql_text, transaction


def start_run(
    con: duckdb.DuckDBPyConnection, run_id: str, flow: str, ds: date, model: str, params: dict, started_at: datetime
) -> None:
    con.execute(
        sql_text("ops/start_run"),
        {
            "run_id": run_id, "flow": flow, "ds": ds, "model": model,
            "params": json.dumps(params, sort_keys=True, default=str), "started_at": started_at,
        },
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, finished_at: datetime, message: str | None = None
) -> None:
    con.execute(
        sql_text("ops/finish_run"), {"run_id": run_id, "status": status, "message": message, "finished_at": finished_at}
    )


def record_metrics(con: duckdb.DuckDBPyConnection, run_id: str, metrics: dict[tuple[str, int], float]) -> None:
    """Replace the run's metrics rows with ``metrics`` (keyed by ``(metric, k)``)."""
    staged = pa.table(
        {
            "metric": [name for name, _ in metrics],
            "k": pa.array([k for _, k in metrics], pa.int32()),
            "value": pa.array(list(metrics.values()), pa.float64()),
        }
    )
    con.register("staged_metrics", staged)
    try:
        with transaction(con):
            con.execute(sql_text("ops/delete_metrics"), {"run_id": run_id})
            con.execute(sql_text("ops/insert_metrics"), {"run_id": run_id})
    finally:
        con.unregister("staged_metrics")
