"""The daily pipeline's steps as plain functions over paths: each opens the warehouse, does one thing, and
returns a small summary. The Prefect flow wraps each in a task; tests and benchmarks call them directly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import torch

from gnnrec.models.base import Model, Recipe
from gnnrec.tasks.data import progress
from gnnrec.tasks.graph import snapshot
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.learn.evaluate import Metric, evaluate as evaluate_protocols, seen_sets
from gnnrec.tasks.ops.failpoints import failpoint
from gnnrec.tasks.graph.ids import CatalogSizes, assign_ids
from gnnrec.tasks.data.ingest import IngestReport, days_to_ingest, ingest_partition
from gnnrec.tasks.data.policy import ContractPolicy
from gnnrec.tasks.publish.topk import PublishSummary, publish_topk
from gnnrec.tasks.data.quality import DayContracts, check_contracts
from gnnrec.tasks.learn.ranking import TopK, rank_top_k
from gnnrec.tasks.graph.snapshot import DaySnapshot
from gnnrec.tasks.learn.train import EpochProgress, TrainingReport, fit, load_checkpoint, save_checkpoint
from gnnrec.tasks.data.validate import DEFAULT_FUTURE_TOLERANCE, SourceValidation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRecipe:
    """Which model to train and how: everything that decides the weights besides the data."""

    name: str
    config: Any  # the model's own Config (models.registry.resolve_config)
    training: Recipe  # its training recipe (models.registry.resolve_recipe)


@dataclass(frozen=True)
class TrainedModel:
    """A reference to trained weights: the checkpoint file and the cut-off of the data they saw."""

    checkpoint: Path
    as_of: date
    report: TrainingReport


def pending_days(db: Path, landing: Path, ds: date) -> list[date]:
    with connect(db) as con:
        return days_to_ingest(con, landing, ds)


def ingest(db: Path, landing: Path, ds: date, future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE) -> IngestReport:
    """Ingest and validate the day (its report's ``validation`` holds each source's tally)."""
    with connect(db) as con:
        return ingest_partition(con, landing, ds, future_tolerance)


def check_data_contracts(
    db: Path, ds: date, run_id: str, policy: ContractPolicy, validation: list[SourceValidation], docs_dir: Path | None
) -> DayContracts:
    with connect(db) as con:
        return check_contracts(con, ds, run_id, policy, validation, docs_dir)


def require_decided(db: Path, ds: date) -> None:
    with connect(db) as con:
        progress.require_decided(con, ds)


def build_graph(db: Path, ds: date) -> CatalogSizes:
    with connect(db) as con:
        return assign_ids(con, ds)


def prepare_snapshot(db: Path, ds: date, eval_days: int) -> Path:
    """The day's snapshot file (written now, or reused when its inputs are unchanged)."""
    with connect(db) as con:
        path, written = snapshot.prepare_snapshot(con, db.parent / "snapshots", ds, eval_days)
    log.info("%s snapshot of %s: %s", "wrote" if written else "reused", ds, path)
    return path


def train(
    day: DaySnapshot, holdout: bool, recipe: ModelRecipe, checkpoint: Path, device: torch.device,
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> TrainedModel:
    """Train ``recipe`` on the day's graph (as of the holdout cut-off when ``holdout``) and save a checkpoint that
    describes itself. ``on_epoch`` is called after every epoch, the model in eval mode."""
    graph, as_of = (day.train, day.cutoff) if holdout else (day.full, day.ds)
    if graph is None or as_of is None:
        raise ValueError(f"the snapshot of {day.ds} holds no holdout graph (eval_days 0)")
    model, report = fit(recipe.name, graph, recipe.config, recipe.training, device, on_epoch)
    save_checkpoint(checkpoint, model, {"as_of": as_of.isoformat(), "ds": day.ds.isoformat()})
    failpoint("trained")
    return TrainedModel(checkpoint, as_of, report)


def evaluate(
    day: DaySnapshot, trained: TrainedModel, device: torch.device, protocol: str | None = None, seed: int = 0
) -> list[Metric]:
    """Score the model trained up to the holdout cut-off on the held-out pairs, by the protocols of its output kind
    (plus ``protocol`` for a ranking model, default ``full``)."""
    if day.holdout is None or day.train is None:
        return []
    model, _ = load_checkpoint(trained.checkpoint, device)
    with torch.no_grad():
        scorer = model.scorer()
    return evaluate_protocols(
        scorer, model.output, day.train, day.holdout.users, day.holdout.items, test_ratings=day.holdout.ratings,
        unavailable_items=day.unborn_at_cutoff, protocol=protocol, seed=seed, device=device,
    )


def rank_for_publishing(day: DaySnapshot, trained: TrainedModel, top_k: int, device: torch.device) -> TopK:
    """Rank the catalog for every user with an interaction up to the day: their top ``top_k`` unseen items."""
    model, _ = load_checkpoint(trained.checkpoint, device)
    # Users and seen items come from everything up to the day, even when the weights stopped at the cut-off.
    users = np.unique(day.full.train_users)
    unborn = day.unborn_at_cutoff if trained.as_of != day.ds else np.empty(0, np.int64)
    with torch.no_grad():
        scorer = model.scorer()
    return rank_top_k(scorer, users, day.full.num_items, top_k, seen_sets(day.full), device=device, exclude_for_all=unborn)


def publish(con: duckdb.DuckDBPyConnection, ds: date, model: str, run_id: str, top: TopK) -> PublishSummary:
    return publish_topk(con, ds, model, run_id, top, datetime.now(timezone.utc).replace(tzinfo=None))
