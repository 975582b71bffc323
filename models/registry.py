"""The models a run can select, by the name the ``model`` flow parameter takes.

A plain dict: adding a model means writing its file and one entry here. Each builder adapts the day's
:class:`GraphData` to the model's constructor, which takes sizes and tensors only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from models.adjacency import normalized_bipartite_adjacency
from models.base import GraphData, Input, Recommender
from models.lightgcn import LightGCN
from models.mf import MatrixFactorization
from models.popularity import Popularity


@dataclass(frozen=True)
class ModelHyperparameters:
    """Architecture and regularisation knobs shared by the models; each model reads the ones it uses."""

    embedding_dim: int = 64
    num_layers: int = 3
    l2: float = 1e-4


@dataclass(frozen=True)
class ModelSpec:
    summary: str
    requires: frozenset[Input]
    build: Callable[[GraphData, ModelHyperparameters, torch.device], Recommender]


def _build_popularity(graph: GraphData, hp: ModelHyperparameters, device: torch.device) -> Popularity:
    return Popularity(graph.num_users, graph.num_items, graph.train_users, graph.train_items).to(device)


def _build_mf(graph: GraphData, hp: ModelHyperparameters, device: torch.device) -> MatrixFactorization:
    return MatrixFactorization(graph.num_users, graph.num_items, hp.embedding_dim, hp.l2).to(device)


def _build_lightgcn(graph: GraphData, hp: ModelHyperparameters, device: torch.device) -> LightGCN:
    adjacency = normalized_bipartite_adjacency(graph.num_users, graph.num_items, graph.train_users, graph.train_items)
    return LightGCN(
        graph.num_users, graph.num_items, hp.embedding_dim, hp.num_layers, adjacency.to(device), hp.l2
    ).to(device)


MODELS: dict[str, ModelSpec] = {
    "pop": ModelSpec("most popular items (baseline)", Popularity.requires, _build_popularity),
    "mf": ModelSpec("matrix factorisation with BPR (baseline)", MatrixFactorization.requires, _build_mf),
    "lightgcn": ModelSpec("LightGCN, SIGIR 2020", LightGCN.requires, _build_lightgcn),
}


def build_model(name: str, graph: GraphData, hp: ModelHyperparameters, device: torch.device) -> Recommender:
    """Build the named model for ``graph``, refusing clearly when the day lacks an input the model needs."""
    try:
        spec = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    missing = spec.requires - graph.available_inputs
    if missing:
        needed = ", ".join(sorted(missing))
        raise ValueError(f"model {name!r} needs {needed} data, which the landing data up to this day does not have")
    return spec.build(graph, hp, device)
