"""A prepared day's snapshot holds exactly what the warehouse holds, is read from it once, and is reused."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from gnnrec.models.base import GraphData
from gnnrec.tasks.graph import ids as graph_module
from gnnrec.tasks.graph import snapshot as snapshot_module
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.graph.ids import catalog_sizes, holdout_cutoff, load_graph, load_holdout
from gnnrec.tasks.graph.snapshot import prepare_snapshot, read_snapshot


def _assert_same_graph(got: GraphData, expected: GraphData) -> None:
    for field in fields(GraphData):
        a, b = getattr(got, field.name), getattr(expected, field.name)
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=field.name)
        else:
            assert a == b, field.name


def test_snapshot_equals_the_warehouse_and_is_reused(planted_world, tmp_path, monkeypatch):
    _, db, last = planted_world
    reads = []
    original = graph_module.load_interaction_pairs
    monkeypatch.setattr(snapshot_module, "load_interaction_pairs", lambda con, ds: reads.append(ds) or original(con, ds))
    with connect(db) as con:
        path, written = prepare_snapshot(con, tmp_path, last, 2)
        assert written and reads == [last]  # one read of the interaction history for both as-of dates
        assert prepare_snapshot(con, tmp_path, last, 2) == (path, False) and reads == [last]
        sizes = catalog_sizes(con, last)
        cutoff = holdout_cutoff(last, 2)
        expected_full, expected_train = load_graph(con, sizes, last), load_graph(con, sizes, cutoff)
        expected_holdout = load_holdout(con, last, 2)
    snapshot = read_snapshot(path)
    assert (snapshot.ds, snapshot.eval_days, snapshot.cutoff) == (last, 2, cutoff)
    _assert_same_graph(snapshot.full, expected_full)
    _assert_same_graph(snapshot.train, expected_train)
    np.testing.assert_array_equal(snapshot.holdout.users, expected_holdout.users)
    np.testing.assert_array_equal(snapshot.holdout.items, expected_holdout.items)
    np.testing.assert_array_equal(snapshot.holdout.ratings, expected_holdout.ratings)
    assert len(snapshot.holdout.users) > 0 and not list(tmp_path.rglob("*.tmp"))


def test_without_a_holdout_the_snapshot_holds_only_the_days_graph(planted_world, tmp_path):
    _, db, last = planted_world
    with connect(db) as con:
        path, _ = prepare_snapshot(con, tmp_path, last, 0)
    snapshot = read_snapshot(path)
    assert snapshot.train is None and snapshot.holdout is None and snapshot.cutoff is None
    assert len(snapshot.full.train_users) > 0
