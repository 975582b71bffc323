"""The models a run can select, by the name the ``model`` flow parameter takes, and their options.

``MODELS`` is a plain dict from name to model class: adding a model means writing its file (a :class:`Model`
subclass with its ``Config`` and ``recipe``) and one entry here. Options reach a model as explicit values:
:func:`resolve_config` turns ``key=value`` strings into the model's typed ``Config``, :func:`resolve_recipe`
applies overrides to its default :class:`Recipe`; both refuse an unknown key by naming the valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import torch

from gnnrec.models.base import GraphData, Model, Recipe
from gnnrec.models.biased_mf import BiasedMF
from gnnrec.models.diffnet import DiffNet
from gnnrec.models.gcmc import GCMC
from gnnrec.models.gcmc_implicit import GCMCImplicit
from gnnrec.models.graphrec import GraphRec, GraphRecPlus
from gnnrec.models.kgat import KGAT
from gnnrec.models.kgcn import KGCN, KGNNLS
from gnnrec.models.lightgcn import LightGCN
from gnnrec.models.mf import MatrixFactorization
from gnnrec.models.ngcf import NGCF
from gnnrec.models.pinsage import PinSage
from gnnrec.models.popularity import Popularity

MODELS: dict[str, type[Model]] = {
    "pop": Popularity,
    "mf": MatrixFactorization,
    "lightgcn": LightGCN,
    "biased-mf": BiasedMF,
    "diffnet": DiffNet,
    "graphrec": GraphRec,
    "graphrec-plus": GraphRecPlus,
    "gcmc": GCMC,
    "gcmc-implicit": GCMCImplicit,
    "ngcf": NGCF,
    "pinsage": PinSage,
    "kgcn": KGCN,
    "kgnn-ls": KGNNLS,
    "kgat": KGAT,
}


def model_class(name: str) -> type[Model]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def resolve_config(name: str, options: Mapping[str, str] | None = None) -> Any:
    """The model's ``Config`` with ``options`` (``{key: value as text}``, e.g. from ``--option.key value``) applied
    over the paper's defaults; a value already of the field's type is taken as it is."""
    cls = model_class(name)
    return _apply(cls.Config(), options or {}, f"model {name!r} option")


def resolve_recipe(name: str, overrides: Mapping[str, object] | None = None) -> Recipe:
    """The model's default :class:`Recipe` with ``overrides`` applied (values typed, or text to parse)."""
    cls = model_class(name)
    return _apply(cls.recipe, overrides or {}, f"model {name!r} recipe field")


def build_model(name: str, graph: GraphData, config: Any = None, device: torch.device | str = "cpu") -> Model:
    """Build the named model for ``graph``, refusing clearly when the day lacks an input the model needs.

    ``config`` is the model's ``Config`` (default: the paper's). For older callers, any other dataclass (e.g.
    :class:`ModelHyperparameters`) is read for the fields the model's ``Config`` has."""
    cls = model_class(name)
    missing = cls.needs - graph.available_inputs
    if missing:
        needed = ", ".join(sorted(missing))
        raise ValueError(f"model {name!r} needs {needed} data, which the landing data up to this day does not have")
    if config is None:
        config = cls.Config()
    elif not isinstance(config, cls.Config):
        known = {f.name for f in dataclasses.fields(cls.Config)}
        config = cls.Config(**{k: v for k, v in dataclasses.asdict(config).items() if k in known})
    return cls.from_graph(graph, config, torch.device(device))


@dataclasses.dataclass(frozen=True)
class ModelHyperparameters:
    """Deprecated: the options shared by the first models, before each model had its own ``Config``. Kept so that
    callers that build models from it keep working; :func:`build_model` reads the fields a model's Config has."""

    embedding_dim: int = 64
    num_layers: int = 3
    l2: float = 1e-4


def _apply(base: Any, values: Mapping[str, object], what: str) -> Any:
    hints = typing.get_type_hints(type(base))
    fields = [f.name for f in dataclasses.fields(base)]
    changes = {}
    for key, value in values.items():
        if key not in fields:
            valid = ", ".join(fields) if fields else "none: it has no options"
            raise ValueError(f"unknown {what} {key!r}; valid: {valid}")
        changes[key] = _coerce(value, hints[key], f"{what} {key}")
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}s {', '.join(changes)}: {error}") from None


def _coerce(value: object, annotation: Any, what: str) -> object:
    """``value`` as a value of ``annotation`` (int, float, bool, str, a Literal, or an optional of one)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(value, inner[0], what)
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"{what}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise ValueError(f"{what}: expected a boolean (true/false), got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError(f"{what}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{what}: expected text, got {value!r}")
    raise TypeError(f"{what}: unsupported field type {annotation!r}")
