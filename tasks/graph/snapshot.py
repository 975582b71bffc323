"""A prepared day as one file: the graphs every model of the day trains on, read from the warehouse once.

Preparing a day (ingest, validate, contracts, ID assignment) ends by writing a snapshot beside the warehouse:
the graph as of the day (for the published model), the graph as of the holdout cut-off (for the evaluated model),
the holdout pairs with their ratings, and the items not yet born at the cut-off. Every model of the day then reads
the snapshot, not the warehouse, so the interaction history is scanned once per prepared day however many models
train, and the warehouse's writer lock is not needed while they train.

A snapshot is named after everything it is made of (the day, the holdout window and the digest of every input file
up to the day), so preparing the same day twice with unchanged inputs reuses it, and it is written under a
temporary name and renamed, so a file under its final name is always whole.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from gnnrec.models.base import GraphData
from gnnrec.tasks.graph.ids import (
    CatalogSizes, Holdout, catalog_sizes, graph_from_pairs, holdout_cutoff, load_interaction_pairs, unavailable_items,
)
from gnnrec.tasks.ops.runs import ingested_inputs

FORMAT_VERSION = 1


@dataclass(frozen=True)
class DaySnapshot:
    """Everything the models of one day need. ``train`` and ``holdout`` are None when nothing is held out."""

    ds: date
    eval_days: int
    full: GraphData
    train: GraphData | None
    holdout: Holdout | None
    unborn_at_cutoff: np.ndarray  # items in the day's catalog that did not exist yet at the holdout cut-off

    @property
    def cutoff(self) -> date | None:
        return self.holdout.cutoff if self.holdout is not None else None


def snapshot_path(folder: Path, ds: date, eval_days: int, inputs_digest: str, sizes: CatalogSizes) -> Path:
    key = hashlib.sha256(f"{FORMAT_VERSION}|{ds}|{eval_days}|{inputs_digest}|{sizes}".encode()).hexdigest()[:16]
    return folder / f"ds={ds.isoformat()}" / f"eval{eval_days}-{key}.npz"


def build_snapshot(con: duckdb.DuckDBPyConnection, ds: date, eval_days: int) -> DaySnapshot:
    """Read the day's graphs and holdout from the warehouse, scanning the interaction history once."""
    sizes = catalog_sizes(con, ds)
    pairs = load_interaction_pairs(con, ds)
    full = graph_from_pairs(pairs, con, sizes, ds)
    if eval_days <= 0:
        return DaySnapshot(ds, eval_days, full, None, None, np.empty(0, np.int64))
    cutoff = holdout_cutoff(ds, eval_days)
    trained = pairs.filter(pl.col("first_ds") <= cutoff)
    unborn = unavailable_items(con, cutoff, ds)
    # A user or item with no history before the cut-off cannot be ranked from the training graph, so such pairs
    # are left out for every model alike.
    test = (
        pairs.filter(pl.col("first_ds") > cutoff)
        .join(trained.select("user_idx").unique(), on="user_idx")
        .join(pl.DataFrame({"item_idx": unborn}, schema={"item_idx": pairs.schema["item_idx"]}), on="item_idx", how="anti")
    )
    holdout = Holdout(
        cutoff,
        test["user_idx"].to_numpy().astype(np.int64),
        test["item_idx"].to_numpy().astype(np.int64),
        test["rating"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
    )
    return DaySnapshot(ds, eval_days, full, graph_from_pairs(trained, con, sizes, cutoff), holdout, unborn)


def _graph_arrays(prefix: str, graph: GraphData) -> dict[str, np.ndarray]:
    arrays = {}
    for field in fields(GraphData):
        value = getattr(graph, field.name)
        if value is not None:
            arrays[f"{prefix}.{field.name}"] = np.asarray(value)
    return arrays


def _graph_from(prefix: str, arrays: dict[str, np.ndarray]) -> GraphData | None:
    values = {
        f.name: arrays[f"{prefix}.{f.name}"] for f in fields(GraphData) if f"{prefix}.{f.name}" in arrays
    }
    if not values:
        return None
    for name in ("num_users", "num_items", "num_entities", "num_relations"):
        values[name] = int(values[name])
    return GraphData(**values)


def write_snapshot(path: Path, snapshot: DaySnapshot) -> None:
    arrays = {"ds": np.array(snapshot.ds.isoformat()), "eval_days": np.array(snapshot.eval_days)}
    arrays |= _graph_arrays("full", snapshot.full) | {"unborn_at_cutoff": snapshot.unborn_at_cutoff}
    if snapshot.train is not None and snapshot.holdout is not None:
        arrays |= _graph_arrays("train", snapshot.train)
        arrays |= {
            "holdout.cutoff": np.array(snapshot.holdout.cutoff.isoformat()), "holdout.users": snapshot.holdout.users,
            "holdout.items": snapshot.holdout.items, "holdout.ratings": snapshot.holdout.ratings,
        }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with temporary.open("wb") as handle:
        np.savez(handle, **arrays)
    os.replace(temporary, path)


def read_snapshot(path: Path) -> DaySnapshot:
    with np.load(path, allow_pickle=False) as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    holdout = None
    if "holdout.cutoff" in arrays:
        holdout = Holdout(
            date.fromisoformat(str(arrays["holdout.cutoff"])), arrays["holdout.users"], arrays["holdout.items"],
            arrays["holdout.ratings"],
        )
    return DaySnapshot(
        date.fromisoformat(str(arrays["ds"])), int(arrays["eval_days"]), _graph_from("full", arrays),
        _graph_from("train", arrays), holdout, arrays["unborn_at_cutoff"],
    )


def prepare_snapshot(con: duckdb.DuckDBPyConnection, folder: Path, ds: date, eval_days: int) -> tuple[Path, bool]:
    """The snapshot file of ``ds`` for its current inputs, written unless it already exists; returns the path and
    whether it was written now."""
    digest, _ = ingested_inputs(con, ds)
    path = snapshot_path(folder, ds, eval_days, digest, catalog_sizes(con, ds))
    if path.is_file():
        return path, False
    write_snapshot(path, build_snapshot(con, ds, eval_days))
    return path, True
