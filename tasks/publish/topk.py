"""Publish: write each user's top-K under the users' and items' own IDs, replacing the ``(ds, model)`` partition
in one transaction so a reader sees the previous list or the new one, never a mix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np
import pyarrow as pa

from gnnrec.tasks.ops.db import sql_text, transaction
from gnnrec.tasks.ops.failpoints import failpoint
from gnnrec.tasks.learn.ranking import TopK


@dataclass(frozen=True)
class PublishSummary:
    ds: date
    model: str
    run_id: str
    users: int
    rows: int


def topk_rows(top: TopK) -> pa.Table:
    """Flatten a :class:`TopK` into ``(user_idx, rank, item_idx, score)`` rows, dropping padding; ranks are 1..n."""
    ranks = np.broadcast_to(np.arange(1, top.items.shape[1] + 1, dtype=np.int32), top.items.shape)
    users = np.broadcast_to(top.users[:, None], top.items.shape)
    real = top.items >= 0
    return pa.table(
        {
            "user_idx": users[real].astype(np.int32),
            "rank": ranks[real],
            "item_idx": top.items[real].astype(np.int32),
            "score": top.scores[real].astype(np.float64),
        }
    )


def publish_topk(
    con: duckdb.DuckDBPyConnection, ds: date, model: str, run_id: str, top: TopK, published_at: datetime
) -> PublishSummary:
    """Replace ``recs.topk`` for ``(ds, model)`` with ``top`` and record the publication, atomically."""
    partition = {"ds": ds, "model": model}
    con.register("staged_topk", topk_rows(top))
    try:
        with transaction(con):
            con.execute(sql_text("recs/delete_topk"), partition)
            con.execute(sql_text("recs/insert_topk"), partition | {"run_id": run_id})
            con.execute(sql_text("recs/delete_publication"), partition)
            ((users, rows),) = con.execute(
                sql_text("recs/record_publication"), partition | {"run_id": run_id, "published_at": published_at}
            ).fetchall()
            failpoint("publish-before-commit")
    finally:
        con.unregister("staged_topk")
    return PublishSummary(ds, model, run_id, int(users), int(rows))
