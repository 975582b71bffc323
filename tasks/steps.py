"""The daily pipeline's steps as plain functions over paths: each opens the warehouse, does one thing, and
returns a small summary. The Prefect flow wraps each in a task; tests and benchmarks call them directly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import torch

from models.base import Recommender
from models.registry import ModelHyperparameters, build_model
from tasks import progress, snapshot
from tasks.db import connect
from tasks.evaluate import evaluate_holdout, exclusion_sets
from tasks.failpoints import failpoint
from tasks.graph import CatalogSizes, assign_ids
from tasks.ingest import IngestReport, days_to_ingest, ingest_partition
from tasks.policy import ContractPolicy
from tasks.publish import PublishSummary, publish_topk
from tasks.quality import DayContracts, check_contracts
from tasks.ranking import TopK, rank_top_k
from tasks.snapshot import DaySnapshot
from tasks.train import TrainingConfig, TrainingReport, fit, load_checkpoint, save_checkpoint
from tasks.validate import DEFAULT_FUTURE_TOLERANCE, SourceValidation, validate_partition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRecipe:
    """Which model to train and how: everything that decides the weights besides the data."""

    name: str
    hyperparameters: ModelHyperparameters
    training: TrainingConfig


@dataclass(frozen=True)
class TrainedModel:
    """A reference to trained weights: the checkpoint file and the cut-off of the data they saw."""

    checkpoint: Path
    as_of: date
    report: TrainingReport


def pending_days(db: Path, landing: Path, ds: date) -> list[date]:
    with connect(db) as con:
        return days_to_ingest(con, landing, ds)


def ingest(db: Path, landing: Path, ds: date) -> IngestReport:
    with connect(db) as con:
        return ingest_partition(con, landing, ds)


def validate(db: Path, ds: date, future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE) -> list[SourceValidation]:
    with connect(db) as con:
        return validate_partition(con, ds, future_tolerance)


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
    on_epoch: Callable[[int, float, Recommender], None] | None = None,
) -> TrainedModel:
    """Train ``recipe`` on the day's graph (as of the holdout cut-off when ``holdout``) and save the weights."""
    graph, as_of = (day.train, day.cutoff) if holdout else (day.full, day.ds)
    if graph is None or as_of is None:
        raise ValueError(f"the snapshot of {day.ds} holds no holdout graph (eval_days 0)")
    model, report = fit(recipe.name, graph, recipe.hyperparameters, recipe.training, device, on_epoch)
    save_checkpoint(checkpoint, model, recipe.name, {"as_of": as_of.isoformat(), "ds": day.ds.isoformat()})
    failpoint("trained")
    return TrainedModel(checkpoint, as_of, report)


def _restore(day: DaySnapshot, trained: TrainedModel, recipe: ModelRecipe, device: torch.device):
    graph = day.full if trained.as_of == day.ds else day.train
    model = build_model(recipe.name, graph, recipe.hyperparameters, device)
    load_checkpoint(trained.checkpoint, model, device)
    return graph, model


def evaluate(day: DaySnapshot, trained: TrainedModel, recipe: ModelRecipe, device: torch.device) -> dict[tuple[str, int], float]:
    """Score the model trained up to the holdout cut-off on the held-out pairs."""
    if day.holdout is None:
        return {}
    graph, model = _restore(day, trained, recipe, device)
    with torch.no_grad():
        scorer = model.scorer()
    return evaluate_holdout(scorer, graph, day.holdout, day.unborn_at_cutoff, device)


def rank_for_publishing(
    day: DaySnapshot, trained: TrainedModel, recipe: ModelRecipe, top_k: int, device: torch.device
) -> TopK:
    """Rank the catalog for every user with an interaction up to the day: their top ``top_k`` unseen items."""
    graph, model = _restore(day, trained, recipe, device)
    # Users and seen items come from everything up to the day, even when the weights stopped at the cut-off.
    users = np.unique(day.full.train_users)
    unborn = day.unborn_at_cutoff if trained.as_of != day.ds else np.empty(0, np.int64)
    exclude = exclusion_sets(day.full, users, unborn)
    with torch.no_grad():
        scorer = model.scorer()
    return rank_top_k(scorer, users, graph.num_items, top_k, exclude, device=device)


def publish(con: duckdb.DuckDBPyConnection, ds: date, model: str, run_id: str, top: TopK) -> PublishSummary:
    return publish_topk(con, ds, model, run_id, top, datetime.now(timezone.utc).replace(tzinfo=None))
