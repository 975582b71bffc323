"""Build graph: give every external ID a stable dense index and load the day's graphs as index arrays.

Indices are assigned once and kept forever (``graph.*_ids``), so an ID means the same row of an embedding table on
every day. Everything loaded for a day is *as of* a cut-off date: nothing landed after it is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from gnnrec.models.base import GraphData
from gnnrec.tasks.ops.db import fetch_arrow, sql_text, transaction
from gnnrec.tasks.ops.failpoints import failpoint


@dataclass(frozen=True)
class CatalogSizes:
    num_users: int
    num_items: int
    num_entities: int
    num_relations: int


@dataclass(frozen=True)
class Holdout:
    """The temporal holdout of a day: pairs first seen in the last ``eval_days`` days up to ``ds``."""

    cutoff: date
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None  # each pair's latest explicit rating, NaN where the source gave none


def assign_ids(con: duckdb.DuckDBPyConnection, ds: date) -> CatalogSizes:
    """Index every user, item, entity and relation seen up to ``ds`` that has no index yet; return the sizes."""
    with transaction(con):
        for kind in ("user", "item", "entity", "relation"):
            con.execute(sql_text(f"graph/assign_{kind}_ids"), {"ds": ds})
        failpoint("graph-before-commit")
    return catalog_sizes(con, ds)


def catalog_sizes(con: duckdb.DuckDBPyConnection, ds: date) -> CatalogSizes:
    (row,) = con.execute(sql_text("graph/catalog_sizes"), {"ds": ds}).fetchall()
    return CatalogSizes(*(int(v) for v in row))


def holdout_cutoff(ds: date, eval_days: int) -> date:
    """The last day that trains when the last ``eval_days`` days up to and including ``ds`` are held out."""
    return ds - timedelta(days=eval_days)


def load_interaction_pairs(con: duckdb.DuckDBPyConnection, ds: date) -> pl.DataFrame:
    """Distinct (user_idx, item_idx) pairs up to ``ds`` with the day each was first seen and its latest rating."""
    return pl.from_arrow(fetch_arrow(con, "graph/interactions", {"ds": ds}))


def load_graph(con: duckdb.DuckDBPyConnection, sizes: CatalogSizes, as_of: date) -> GraphData:
    """The interaction, social and KG graphs as of ``as_of``, indexed in the catalog of ``sizes``."""
    return graph_from_pairs(load_interaction_pairs(con, as_of), con, sizes, as_of)


def graph_from_pairs(pairs: pl.DataFrame, con: duckdb.DuckDBPyConnection, sizes: CatalogSizes, as_of: date) -> GraphData:
    """The graph as of ``as_of`` from interaction pairs already read (:func:`load_interaction_pairs`, possibly
    filtered to an earlier cut-off) plus the small social, KG and item-link tables."""
    social = fetch_arrow(con, "graph/social_edges", {"ds": as_of})
    triples = fetch_arrow(con, "graph/kg_triples", {"ds": as_of})
    links = fetch_arrow(con, "graph/item_entities", {"ds": as_of})
    item_entity = np.full(sizes.num_items, -1, dtype=np.int64)
    item_entity[links["item_idx"].to_numpy()] = links["entity_idx"].to_numpy()

    def column(table, name: str) -> np.ndarray:
        return np.asarray(table[name].to_numpy(), dtype=np.int64)

    return GraphData(
        num_users=sizes.num_users,
        num_items=sizes.num_items,
        train_users=column(pairs, "user_idx"),
        train_items=column(pairs, "item_idx"),
        train_ratings=pairs["rating"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
        social_src=column(social, "src_idx"),
        social_dst=column(social, "dst_idx"),
        num_entities=sizes.num_entities,
        num_relations=sizes.num_relations,
        kg_head=column(triples, "head_idx"),
        kg_relation=column(triples, "relation_idx"),
        kg_tail=column(triples, "tail_idx"),
        item_entity=item_entity,
    )


def load_holdout(con: duckdb.DuckDBPyConnection, ds: date, eval_days: int) -> Holdout:
    """Pairs first seen in ``(ds - eval_days, ds]``, between users and items that both existed at the cut-off.

    A user or item with no history before the cut-off cannot be ranked from the training graph, so scoring it
    measures nothing about the model; such pairs are left out for every model alike.
    """
    cutoff = holdout_cutoff(ds, eval_days)
    pairs = load_interaction_pairs(con, ds)
    trained = pairs.filter(pl.col("first_ds") <= cutoff)
    unavailable = pl.DataFrame({"item_idx": unavailable_items(con, cutoff, ds)}, schema={"item_idx": pairs.schema["item_idx"]})
    test = (
        pairs.filter(pl.col("first_ds") > cutoff)
        .join(trained.select("user_idx").unique(), on="user_idx")
        .join(unavailable, on="item_idx", how="anti")
    )
    return Holdout(
        cutoff, test["user_idx"].to_numpy().astype(np.int64), test["item_idx"].to_numpy().astype(np.int64),
        test["rating"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
    )


def unavailable_items(con: duckdb.DuckDBPyConnection, as_of: date, catalog_ds: date) -> np.ndarray:
    """Items in the catalog of ``catalog_ds`` that did not exist yet on ``as_of``: never rankable as of ``as_of``."""
    table = fetch_arrow(con, "graph/future_items", {"as_of": as_of, "catalog_ds": catalog_ds})
    return np.asarray(table["item_idx"].to_numpy(), dtype=np.int64)
