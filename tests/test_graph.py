"""The normalized adjacency on a hand-built graph, and the ID maps and as-of loads on a hand-written two-day world."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrec.models.adjacency import normalized_bipartite_adjacency, symmetric_propagate
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.graph.ids import CatalogSizes, assign_ids, catalog_sizes, load_graph, load_holdout
from gnnrec.tasks.data.ingest import ingest_partition

# ---------------------------------------------------------------------------------------------------------------
# Normalized adjacency: 3 users x 4 items
#
#   user 0 -- items 0, 1, 2      deg(u0) = 3
#   user 1 -- item 1 (twice)     deg(u1) = 1  (a duplicate pair counts once)
#   user 2 -- nothing            isolated
#   item 0: deg 1, item 1: deg 2 (u0, u1), item 2: deg 1, item 3: deg 0 (isolated)
#
# Nodes: users 0..2, then items at 3..6.  Entry (u, 3 + i) = 1 / sqrt(deg_u * deg_i):
#   (0, 3) = 1/sqrt(3*1) = 1/sqrt(3)    (0, 4) = 1/sqrt(3*2) = 1/sqrt(6)    (0, 5) = 1/sqrt(3*1) = 1/sqrt(3)
#   (1, 4) = 1/sqrt(1*2) = 1/sqrt(2)
# ---------------------------------------------------------------------------------------------------------------

USERS = np.array([0, 0, 0, 1, 1])
ITEMS = np.array([0, 1, 2, 1, 1])
R3, R6, R2 = 1 / math.sqrt(3), 1 / math.sqrt(6), 1 / math.sqrt(2)
EXPECTED = torch.tensor(
    [
        # u0   u1   u2   i0   i1   i2   i3
        [0.0, 0.0, 0.0, R3, R6, R3, 0.0],  # u0
        [0.0, 0.0, 0.0, 0.0, R2, 0.0, 0.0],  # u1
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # u2 (isolated)
        [R3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # i0
        [R6, R2, 0.0, 0.0, 0.0, 0.0, 0.0],  # i1
        [R3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # i2
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # i3 (isolated)
    ]
)


def test_normalized_adjacency_exact_values():
    adjacency = normalized_bipartite_adjacency(3, 4, USERS, ITEMS)
    assert adjacency.shape == (7, 7)
    assert adjacency.dtype == torch.float32
    torch.testing.assert_close(adjacency.to_dense(), EXPECTED)


def test_normalized_adjacency_is_symmetric_and_counts_duplicates_once():
    adjacency = normalized_bipartite_adjacency(3, 4, USERS, ITEMS).to_dense()
    torch.testing.assert_close(adjacency, adjacency.T)
    deduplicated = normalized_bipartite_adjacency(3, 4, np.array([0, 0, 0, 1]), np.array([0, 1, 2, 1])).to_dense()
    torch.testing.assert_close(adjacency, deduplicated)


def test_normalized_adjacency_csr_layout_with_empty_rows_for_isolated_nodes():
    adjacency = normalized_bipartite_adjacency(3, 4, USERS, ITEMS)
    assert adjacency.layout == torch.sparse_csr
    # rows u0..u2, i0..i3 hold 3, 1, 0, 1, 2, 1, 0 entries
    assert adjacency.crow_indices().tolist() == [0, 3, 4, 4, 5, 7, 8, 8]
    assert adjacency.col_indices().tolist() == [3, 4, 5, 4, 0, 0, 1, 0]
    torch.testing.assert_close(
        adjacency.values(), torch.tensor([R3, R6, R3, R2, R3, R6, R2, R3], dtype=torch.float32)
    )


def test_symmetric_propagate_gradient_equals_dense_matmul_gradient():
    generator = torch.Generator().manual_seed(0)
    adjacency = normalized_bipartite_adjacency(3, 4, USERS, ITEMS)
    weights = torch.randn(7, 2, generator=generator)  # makes the upstream gradient non-uniform
    start = torch.randn(7, 2, generator=generator)

    sparse_x = start.clone().requires_grad_()
    sparse_out = symmetric_propagate(adjacency, symmetric_propagate(adjacency, sparse_x))  # two layers
    (sparse_out * weights).sum().backward()

    dense_x = start.clone().requires_grad_()
    dense_out = EXPECTED @ (EXPECTED @ dense_x)
    (dense_out * weights).sum().backward()

    torch.testing.assert_close(sparse_out, dense_out)
    torch.testing.assert_close(sparse_x.grad, dense_x.grad)


# ---------------------------------------------------------------------------------------------------------------
# ID maps and as-of loads on two hand-written days
# ---------------------------------------------------------------------------------------------------------------

DAY_1, DAY_2 = date(2026, 1, 1), date(2026, 1, 2)
HEADER = "user_id,item_id,event,rating,ts\n"


def _land(landing: Path, source: str, ds: date, name: str, text: str) -> None:
    path = landing / source / f"ds={ds.isoformat()}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _jsonl(*triples: tuple[str, str, str]) -> str:
    return "".join(json.dumps({"head": h, "relation": r, "tail": t}) + "\n" for h, r, t in triples)


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    _land(landing, "interactions", DAY_1, "events.csv", HEADER + (
        "u-b,sku-2,view,,2026-01-01T10:00:00Z\n"
        "u-a,sku-2,view,,2026-01-01T11:00:00Z\n"
        "u-a,sku-1,rate,4,2026-01-01T12:00:00Z\n"
        "u-a,sku-1,rate,2,2026-01-01T13:00:00Z\n"  # the latest rating of (u-a, sku-1)
    ))  # fmt: skip
    _land(landing, "social", DAY_1, "edges.csv", "src_user_id,dst_user_id\nu-c,u-a\n")  # u-c: social only
    _land(landing, "kg", DAY_1, "triples.jsonl", _jsonl(
        ("ent:2", "has_genre", "genre:jazz"),
        ("ent:1", "created_by", "creator:x"),
    ))  # fmt: skip
    # sku-3 is only linked to the KG, never interacted with
    _land(landing, "item_entities", DAY_1, "links.csv", "item_id,entity_id\nsku-1,ent:1\nsku-3,ent:3\n")
    # day 2: a new user and a new item whose IDs sort before every old one
    _land(landing, "interactions", DAY_2, "events.csv", HEADER + (
        "u-a,sku-2,click,,2026-01-02T09:00:00Z\n"  # an old pair again
        "u-b,sku-1,view,,2026-01-02T09:00:00Z\n"   # new pair, old user, old item: the only holdout pair
        "u-b,sku-0,view,,2026-01-02T09:00:00Z\n"   # old user, new item
        "u-0,sku-1,view,,2026-01-02T09:00:00Z\n"   # new user, old item
        "u-0,sku-0,view,,2026-01-02T09:00:00Z\n"   # new user, new item
    ))  # fmt: skip
    _land(landing, "kg", DAY_2, "triples.jsonl", _jsonl(("ent:0", "sequel_of", "ent:2")))
    return landing


def _load(con, landing: Path, *days: date) -> None:
    for day in days:
        ingest_partition(con, landing, day)


def _maps(con) -> dict[str, list[tuple]]:
    return {
        kind: con.execute(f"select * from graph.{kind}_ids order by 2").fetchall()
        for kind in ("user", "item", "entity", "relation")
    }


SIZES_DAY_1 = CatalogSizes(num_users=3, num_items=3, num_entities=5, num_relations=2)
SIZES_DAY_2 = CatalogSizes(num_users=4, num_items=4, num_entities=6, num_relations=3)
# ordered by first day, then ID
MAPS_DAY_1 = {
    "user": [("u-a", 0, DAY_1), ("u-b", 1, DAY_1), ("u-c", 2, DAY_1)],
    "item": [("sku-1", 0, DAY_1), ("sku-2", 1, DAY_1), ("sku-3", 2, DAY_1)],
    "entity": [
        ("creator:x", 0, DAY_1), ("ent:1", 1, DAY_1), ("ent:2", 2, DAY_1), ("ent:3", 3, DAY_1), ("genre:jazz", 4, DAY_1),
    ],
    "relation": [("created_by", 0, DAY_1), ("has_genre", 1, DAY_1)],
}
MAPS_DAY_2 = {
    "user": [*MAPS_DAY_1["user"], ("u-0", 3, DAY_2)],
    "item": [*MAPS_DAY_1["item"], ("sku-0", 3, DAY_2)],
    "entity": [*MAPS_DAY_1["entity"], ("ent:0", 5, DAY_2)],
    "relation": [*MAPS_DAY_1["relation"], ("sequel_of", 2, DAY_2)],
}


def test_id_maps_grow_day_by_day_and_reruns_change_nothing(tmp_path: Path, two_days: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _load(con, two_days, DAY_1)
        assert assign_ids(con, DAY_1) == SIZES_DAY_1
        assert _maps(con) == MAPS_DAY_1
        assert assign_ids(con, DAY_1) == SIZES_DAY_1
        assert _maps(con) == MAPS_DAY_1

        _load(con, two_days, DAY_2)
        assert assign_ids(con, DAY_2) == SIZES_DAY_2
        assert _maps(con) == MAPS_DAY_2
        assert assign_ids(con, DAY_2) == SIZES_DAY_2
        assert assign_ids(con, DAY_1) == SIZES_DAY_1
        assert _maps(con) == MAPS_DAY_2
        assert catalog_sizes(con, DAY_1) == SIZES_DAY_1


def test_id_maps_catching_up_two_days_at_once_equal_day_by_day(tmp_path: Path, two_days: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _load(con, two_days, DAY_1, DAY_2)
        assert assign_ids(con, DAY_2) == SIZES_DAY_2
        assert _maps(con) == MAPS_DAY_2


def test_load_graph_as_of_day_1_sees_nothing_of_day_2(tmp_path: Path, two_days: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _load(con, two_days, DAY_1, DAY_2)
        assign_ids(con, DAY_2)
        graph = load_graph(con, catalog_sizes(con, DAY_1), DAY_1)
    assert (graph.num_users, graph.num_items, graph.num_entities, graph.num_relations) == (3, 3, 5, 2)
    # (u-a, sku-1) rated 4 then 2; (u-a, sku-2) and (u-b, sku-2) unrated
    assert graph.train_users.tolist() == [0, 0, 1]
    assert graph.train_items.tolist() == [0, 1, 1]
    np.testing.assert_array_equal(graph.train_ratings, [2.0, np.nan, np.nan])
    assert (graph.social_src.tolist(), graph.social_dst.tolist()) == ([2], [0])  # u-c -> u-a
    # (ent:1, created_by, creator:x), (ent:2, has_genre, genre:jazz)
    triples = list(zip(graph.kg_head.tolist(), graph.kg_relation.tolist(), graph.kg_tail.tolist()))
    assert triples == [(1, 0, 0), (2, 1, 4)]
    assert graph.item_entity.tolist() == [1, -1, 3]  # sku-1 -> ent:1, sku-2 unlinked, sku-3 -> ent:3


def test_load_graph_as_of_day_2_sees_both_days(tmp_path: Path, two_days: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _load(con, two_days, DAY_1, DAY_2)
        graph = load_graph(con, assign_ids(con, DAY_2), DAY_2)
    pairs = list(zip(graph.train_users.tolist(), graph.train_items.tolist()))
    assert pairs == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 3), (3, 0), (3, 3)]
    assert graph.item_entity.tolist() == [1, -1, 3, -1]


def test_holdout_is_new_pairs_between_users_and_items_that_existed_before(tmp_path: Path, two_days: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _load(con, two_days, DAY_1, DAY_2)
        assign_ids(con, DAY_2)
        holdout = load_holdout(con, DAY_2, eval_days=1)
    assert holdout.cutoff == DAY_1
    # only (u-b, sku-1): (u-a, sku-2) was first seen on day 1; u-0 and sku-0 did not exist before day 2
    assert (holdout.users.tolist(), holdout.items.tolist()) == ([1], [0])
    assert holdout.users.dtype == holdout.items.dtype == np.int64
