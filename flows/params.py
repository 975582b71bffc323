"""The daily flow's parameters: one pydantic model, validated once at the flow's edge and passed down."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.registry import MODELS, ModelHyperparameters
from tasks.policy import ContractPolicy
from tasks.steps import ModelRecipe
from tasks.train import TrainingConfig


class DailyParams(BaseModel):
    """Parameters of one daily run. Every field is also a ``gnnrec run`` option."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ds: date | None = Field(None, description="day to process (YYYY-MM-DD); default: the scheduled day, else today")
    model: str = Field("lightgcn", description=f"model to train: {', '.join(MODELS)}")
    top_k: int = Field(50, ge=1, le=1000, description="recommendations published per user")
    embedding_dim: int = Field(64, ge=1, description="embedding size")
    num_layers: int = Field(3, ge=0, le=8, description="propagation layers (graph models)")
    epochs: int = Field(40, ge=0, description="training epochs")
    batch_size: int = Field(2048, ge=1, description="BPR triples per training step")
    learning_rate: float = Field(0.005, gt=0, description="Adam learning rate")
    l2: float = Field(1e-4, ge=0, description="L2 penalty on the batch's ego embeddings")
    sampling: Literal["pair", "user"] = Field(
        "pair", description="what an epoch visits: every training pair once, or uniformly drawn users"
    )
    lr_decay: float = Field(1.0, gt=0, le=1, description="learning-rate factor applied after each epoch")
    lr_decay_start: int = Field(0, ge=0, description="first epoch after which lr_decay applies")
    negatives: int = Field(1, ge=1, le=256, description="sampled negatives per positive in the BPR loss")
    negative_sampling: Literal["uniform", "dynamic"] = Field(
        "uniform", description="uniform: average the loss over the negatives; dynamic: train on the highest-scored one"
    )
    eval_days: int = Field(1, ge=0, description="trailing days held out for evaluation (0: skip evaluation)")
    retrain: bool = Field(True, description="after evaluating, retrain on all data up to ds before publishing")
    curve_recall: bool = Field(
        False, description="rank the holdout after every epoch for the training curve's Recall@20 (one evaluation per epoch)"
    )
    seed: int = Field(2026, description="random seed (runs are deterministic on CPU)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device; auto takes CUDA when present")
    landing: Path = Field(Path("landing"), description="landing root: <landing>/<source>/ds=YYYY-MM-DD/*")
    db: Path = Field(Path("data/gnnrec.duckdb"), description="the pipeline's DuckDB file")
    contracts: ContractPolicy = Field(
        ContractPolicy(),
        description="per source: rejection_budget (share of rows read), critical expectations, "
        'fail_on_unreadable_file; as JSON, e.g. \'{"interactions": {"rejection_budget": 0.1}}\'',
    )
    analytics: Path = Field(
        Path("data/analytics.duckdb"), description="the analysts' read-only store: views over Parquet files beside it"
    )
    lock_wait: float = Field(
        0.0, ge=0, description="seconds to wait for another run's lock on --db before failing (0: fail at once)"
    )

    @field_validator("model")
    @classmethod
    def known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; choose one of {', '.join(MODELS)}")
        return value

    def recipe(self) -> ModelRecipe:
        return ModelRecipe(
            name=self.model,
            hyperparameters=ModelHyperparameters(self.embedding_dim, self.num_layers, self.l2),
            training=TrainingConfig(
                self.epochs, self.batch_size, self.learning_rate, self.seed, self.sampling, self.lr_decay,
                self.lr_decay_start, self.negatives, self.negative_sampling,
            ),
        )
