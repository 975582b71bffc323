"""The daily flow's parameters: one pydantic model, validated once at the flow's edge and passed down.

Two layers of checks, both before anything is written. The validators check what the values alone decide (ranges,
``--epochs`` against the model, distinct paths); :meth:`DailyParams.check_before_run` checks what needs the file
system (the warehouse's folder and file, the landed history). ``gnnrec run`` calls it before it starts the flow, and
the flow calls it first thing, so a deployment's run gets the same checks. Messages name the ``gnnrec`` option.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from cyclopts import Parameter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gnnrec.models.registry import MODELS, resolve_config, resolve_recipe
from gnnrec.tasks.learn.evaluate import split_protocols
from gnnrec.tasks.data.policy import ContractPolicy
from gnnrec.tasks.steps import ModelRecipe

# The days a run can process: ds +- any day count the pipeline uses stays a valid date, and DuckDB and epoch
# arithmetic (microsecond timestamps) hold every day of it.
DS_MIN, DS_MAX = date(1900, 1, 1), date(9998, 12, 31)
MAX_EVAL_DAYS = (DS_MAX - DS_MIN).days
# torch.manual_seed takes 0..2**64-1 and numpy's default_rng refuses negatives, but ops.runs.seed is a BIGINT.
SEED_MAX = 2**63 - 1
# Models with nothing to train (Popularity has no parameters); every other model needs --epochs >= 1.
UNTRAINED_MODELS = frozenset({"pop"})
# The flow parameters that override a field of the model's training recipe when given.
RECIPE_FIELDS = (
    "epochs", "batch_size", "learning_rate", "l2", "sampling", "lr_decay", "lr_decay_start", "negatives",
    "negative_sampling", "validation_share",
)


# A model's registry name: the flow's form offers these as choices and the Prefect server refuses any other when a run
# is created.
ModelName = Literal[*MODELS]


ModelT = TypeVar("ModelT", bound=BaseModel)


class OptionError(ValueError):
    """An option value refused by a check that looks at the file system; the message starts with the option."""


def options_only(model: type[ModelT]) -> type[ModelT]:
    """Mark every field keyword-only: the command line (cyclopts reads ``kw_only``) then takes each as an option,
    never by position, so a stray word is refused rather than read as the day."""
    for field in model.model_fields.values():
        field.kw_only = True
    return model


def iso_day(value: object) -> object:
    """A day given as text must be ISO (YYYY-MM-DD): one message for every malformed or impossible date."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"invalid date {value!r}: expected YYYY-MM-DD") from None
    return value


@options_only
class DailyParams(BaseModel):
    """Parameters of one daily run. Every field is also a ``gnnrec run`` option."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ds: date | None = Field(
        None, description=f"day to process (YYYY-MM-DD, {DS_MIN}..{DS_MAX}); default: the scheduled day, else today"
    )
    model: Annotated[ModelName | tuple[ModelName, ...], Parameter(show_choices=False, negative_iterable=())] = Field(
        "lightgcn",
        description=f"model(s) to train; several (a list, or comma-separated on the command line) train on one "
        f"prepared day: {', '.join(MODELS)}",
    )
    top_k: int = Field(50, ge=1, le=1000, description="recommendations published per user")
    options: Annotated[dict[str, str], Parameter(name="--option")] = Field(
        default_factory=dict,
        description="model options over each selected model's own config (paper defaults), e.g. {\"embedding_dim\": "
        "\"32\"}, on the command line --option.embedding_dim 32; a key must belong to a selected model",
    )
    protocol: str | None = Field(
        None, description="evaluation protocol of ranking models: full (every unseen item) or sampled:N, or several "
        "comma-separated (sampled:1000,full), the first giving the headline figures; rating and click models add "
        "their own (MAE/RMSE, AUC/F1)",
    )
    # The training recipe: each field left unset takes the model's own default recipe (models/<model>.py).
    embedding_dim: int | None = Field(None, ge=1, description="embedding size (default: the model's recipe)")
    num_layers: int | None = Field(
        None, ge=0, le=8, description="propagation layers of graph models (default: the model's recipe)"
    )
    epochs: int | None = Field(None, ge=0, description="training epochs (default: the model's recipe)")
    batch_size: int | None = Field(None, ge=1, description="training examples per step (default: the model's recipe)")
    learning_rate: float | None = Field(None, gt=0, description="Adam learning rate (default: the model's recipe)")
    l2: float | None = Field(
        None, ge=0, description="L2 penalty on the batch's ego embeddings (default: the model's recipe)"
    )
    sampling: Literal["pair", "user"] | None = Field(
        None,
        description="what an epoch visits: every training pair once, or uniformly drawn users (default: the model's "
        "recipe)",
    )
    lr_decay: float | None = Field(
        None, gt=0, le=1, description="learning-rate factor applied after each epoch (default: the model's recipe)"
    )
    lr_decay_start: int | None = Field(
        None, ge=0, description="first epoch after which lr_decay applies (default: the model's recipe)"
    )
    negatives: int | None = Field(
        None, ge=1, le=256, description="sampled negatives per positive (default: the model's recipe)"
    )
    negative_sampling: Literal["uniform", "dynamic"] | None = Field(
        None,
        description="uniform: average the loss over the negatives; dynamic: train on the highest-scored one (default: "
        "the model's recipe)",
    )
    validation_share: float | None = Field(
        None, ge=0, lt=1,
        description="share of training pairs held apart for early stopping (0: none; default: the model's recipe)",
    )
    future_tolerance_hours: float = Field(
        24.0, ge=0, le=24 * 366,
        description="how far after the end of its partition day an event's time may be before the row is quarantined "
        "(ts_not_after_partition_day)",
    )
    eval_days: int = Field(1, ge=0, description="trailing days held out for evaluation (0: skip evaluation)")
    retrain: bool = Field(True, description="after evaluating, retrain on all data up to ds before publishing")
    curve_recall: bool = Field(
        False, description="rank the holdout after every epoch for the training curve's Recall@20 (one evaluation per epoch)"
    )
    seed: int = Field(2026, description=f"random seed, 0..{SEED_MAX} (runs are deterministic on CPU)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device; auto takes CUDA when present")
    landing: Path = Field(Path("landing"), description="landing root: <landing>/<source>/ds=YYYY-MM-DD/*")
    db: Path = Field(Path("data/gnnrec.duckdb"), description="the pipeline's DuckDB file")
    contracts: ContractPolicy = Field(
        ContractPolicy(),
        description="per source: rejection_budget (share of rows read), critical expectations, "
        'fail_on_unreadable_file; as JSON, e.g. \'{"interactions": {"rejection_budget": 0.1}}\', or on the command '
        "line one field at a time, e.g. --contracts.interactions.rejection-budget 0.1",
    )
    analytics: Path | None = Field(
        None,
        description="the analysts' read-only store: the views file of a folder of Parquet files; default: derived "
        "from --db (data/gnnrec.duckdb -> data/gnnrec.analytics/views.duckdb)",
    )
    keep_checkpoints: int = Field(
        3, ge=0, description="model checkpoints kept per model: those of its newest N completed runs (0: none)"
    )
    lock_wait: float = Field(
        0.0, ge=0, description="seconds to wait for another run's lock on --db before failing (0: fail at once)"
    )

    @model_validator(mode="before")
    @classmethod
    def derive_store(cls, data: object) -> object:
        """No ``analytics`` given: the store that belongs to ``db`` (never one shared by every warehouse)."""
        from gnnrec.tasks.publish.analytics import default_store, views_file

        if isinstance(data, dict) and data.get("analytics") is None:
            db = data.get("db", cls.model_fields["db"].default)
            data = {**data, "analytics": default_store(Path(db))}
        elif isinstance(data, dict) and isinstance(data["analytics"], str | Path):
            data = {**data, "analytics": views_file(Path(data["analytics"]))}  # a store given as its folder
        return data

    @field_validator("model", mode="before")
    @classmethod
    def known_models(cls, value: object) -> object:
        """One model, a list of them, or their comma-separated names (the command line), as the tuple of names; an
        unknown or repeated name is refused with one message (rather than one per branch of the type's union)."""
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",")]
        if not isinstance(value, list | tuple):
            return value  # not a model name at all: the type's own message says so
        if not value:
            raise ValueError(f"name at least one model: {', '.join(MODELS)}")
        for name in value:
            if name not in MODELS:
                raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"a model is named twice in {','.join(value)!r}")
        return tuple(value)

    @field_validator("ds", mode="before")
    @classmethod
    def day_as_iso_text(cls, value: object) -> object:
        return iso_day(value)

    @field_validator("ds")
    @classmethod
    def day_gnnrec_can_hold(cls, value: date | None) -> date | None:
        if value is not None:
            check_day_range(value)
        return value

    @field_validator("seed")
    @classmethod
    def seed_fits_64_bits(cls, value: int) -> int:
        if not 0 <= value <= SEED_MAX:
            raise ValueError(f"{value} is outside 0..{SEED_MAX} (2**63-1, the seed a run records as a BIGINT)")
        return value

    @field_validator("eval_days")
    @classmethod
    def eval_days_within_the_calendar(cls, value: int) -> int:
        if value > MAX_EVAL_DAYS:
            raise ValueError(f"{value} days is more than the {MAX_EVAL_DAYS} days from {DS_MIN} to {DS_MAX}")
        return value

    @model_validator(mode="after")
    def epochs_for_a_trained_model(self) -> DailyParams:
        trained = [name for name in self.models if name not in UNTRAINED_MODELS]
        if self.epochs is not None and self.epochs == 0 and trained:
            raise ValueError(
                f"--epochs: model {trained[0]} trains, and 0 epochs would publish its random initial weights; "
                "give at least 1"
            )
        return self

    @model_validator(mode="after")
    def holdout_within_the_calendar(self) -> DailyParams:
        if self.ds is not None:
            check_holdout_reach(self.ds, self.eval_days, "--ds")
        return self

    @model_validator(mode="after")
    def distinct_places(self) -> DailyParams:
        check_distinct_places(self.db, self.analytics, self.landing)
        return self

    def check_before_run(self, ds: date | None = None) -> None:
        """The checks that need the file system, made before anything is written; raises :class:`OptionError`.

        ``ds``: the day the run processes (default: ``self.ds``, else today in UTC)."""
        check_writable_file_folder(self.db, "--db")
        check_writable_file_folder(self.analytics, "--analytics")
        check_warehouse_file(self.db)
        day = ds or self.ds or datetime.now(timezone.utc).date()
        check_day_range(day, OptionError, "--ds: ")
        check_history(self.landing, day, self.eval_days)

    @property
    def models(self) -> tuple[str, ...]:
        """The selected models, in the order given."""
        return (self.model,) if isinstance(self.model, str) else tuple(self.model)

    @property
    def model_label(self) -> str:
        """The selected models as run names and lock holders spell them: ``lightgcn,mf,pop``."""
        return ",".join(self.models)

    def flow_parameters(self) -> dict[str, Any]:
        """Every field as the flow's keyword parameter of that name (:func:`flat_flow_parameters`), the models as a
        list."""
        return {name: getattr(self, name) for name in type(self).model_fields} | {"model": list(self.models)}

    @property
    def future_tolerance(self) -> timedelta:
        return timedelta(hours=self.future_tolerance_hours)

    def recipe(self, model: str) -> ModelRecipe:
        """The model's own config and recipe, with the options and recipe fields given here over them."""
        config_fields = MODELS[model].Config.__dataclass_fields__
        given = {name: getattr(self, name) for name in ("embedding_dim", "num_layers") if getattr(self, name) is not None}
        options = {k: v for k, v in given.items() if k in config_fields}
        options |= {k: v for k, v in self.options.items() if k in config_fields}
        training = {name: getattr(self, name) for name in RECIPE_FIELDS if getattr(self, name) is not None}
        return ModelRecipe(
            name=model, config=resolve_config(model, options), training=resolve_recipe(model, training | {"seed": self.seed})
        )

    @model_validator(mode="after")
    def options_belong_to_a_selected_model(self) -> DailyParams:
        known = {name for model in self.models for name in MODELS[model].Config.__dataclass_fields__}
        unknown = sorted(set(self.options) - known)
        if unknown:
            raise ValueError(
                f"--option: {', '.join(unknown)} is no option of {', '.join(self.models)}; "
                f"valid: {', '.join(sorted(known)) or 'none'}"
            )
        for model in self.models:  # a bad value is refused here, at the edge, naming the key
            self.recipe(model)
        return self

    @field_validator("protocol")
    @classmethod
    def known_protocol(cls, value: str | None) -> str | None:
        return None if value is None else ",".join(split_protocols(value))


FlowFunction = TypeVar("FlowFunction", bound=Callable[..., Any])


def flat_flow_parameters(params: type[BaseModel], exclude: tuple[str, ...] = ()) -> Callable[[FlowFunction], FlowFunction]:
    """Give a flow written as ``def f(**options)`` one typed keyword parameter per field of ``params``.

    Prefect builds a flow's form and parameter schema (types, ranges, choices, descriptions) from its function's
    signature and docstring, validates a run's parameters against them, and merges a run's parameters over its
    deployment's key by key: with one parameter per option, ``prefect deployment run ... -p epochs=3`` changes
    that option alone. The options stay defined once, as the fields of ``params``; the docstring's ``Args``
    section, which Prefect shows beside each parameter, is written from their descriptions. Fields named in
    ``exclude`` are no parameters of the flow.
    """
    fields = {name: field for name, field in params.model_fields.items() if name not in exclude}

    def apply(fn: FlowFunction) -> FlowFunction:
        parameters = [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True),
                annotation=Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation,
            )
            for name, field in fields.items()
        ]  # fmt: skip
        fn.__signature__ = inspect.Signature(parameters, return_annotation=inspect.signature(fn).return_annotation)
        described = "\n".join(f"    {name}: {field.description}" for name, field in fields.items())
        fn.__doc__ = f"{inspect.cleandoc(fn.__doc__ or '')}\n\nArgs:\n{described}\n"
        return fn

    return apply


def check_day_range(day: date, error: type[ValueError] = ValueError, prefix: str = "") -> None:
    if not DS_MIN <= day <= DS_MAX:
        raise error(f"{prefix}{day} is outside the days gnnrec can hold, {DS_MIN}..{DS_MAX}")


def check_holdout_reach(ds: date, eval_days: int, option: str) -> None:
    """The holdout's cut-off ``ds - eval_days`` must stay a day gnnrec can hold (no date arithmetic overflows)."""
    if ds.toordinal() - eval_days < DS_MIN.toordinal():
        raise ValueError(f"--eval-days: {eval_days} days before {option} {ds} is before {DS_MIN}")


def check_history(landing: Path, ds: date, eval_days: int) -> None:
    """``eval_days`` must leave at least one day of the landed history (first landed day .. ``ds``) to train on.

    Nothing landed up to ``ds`` (or no landing folder) is left to the run itself to report."""
    from gnnrec.tasks.data.ingest import landed_days

    if eval_days == 0:
        return
    days = landed_days(landing, ds)
    if not days:
        return
    length = ds.toordinal() - days[0].toordinal() + 1
    if eval_days >= length:
        most = f"at most {length - 1}" if length > 1 else "none (--eval-days 0 skips evaluation)"
        raise OptionError(
            f"--eval-days: holding out {eval_days} day{'s' if eval_days != 1 else ''} leaves nothing to train on: the "
            f"history under {landing} is {length} day{'s' if length != 1 else ''} ({days[0]}..{ds}); hold out {most}"
        )


def check_distinct_places(db: Path, analytics: Path, landing: Path) -> None:
    """The warehouse, its checkpoint folder, the analysts' store (file and Parquet folder) and the landing folder
    are distinct after resolving links and ``..``, and none lies inside another. The landing folder's own root
    is not read (only ``<landing>/<source>/``), so outputs may sit beside its source folders, not inside them."""
    from gnnrec.tasks.publish.analytics import store_dir
    from gnnrec.tasks.data.ingest import SOURCES

    places = [  # (option, what it is, path as given); a clash names the later one's option first
        ("--db", "the warehouse", db),
        ("--db", "the warehouse's lock file", db.with_name(db.name + ".lock")),
        ("--db", "the checkpoint folder", db.parent / "checkpoints"),
        ("--analytics", "the analysts' store", analytics),
        ("--analytics", "the analysts' Parquet folder", store_dir(analytics)),
        ("--landing", "the landing folder", landing),
    ]
    resolved = [Path(os.path.abspath(path)).resolve() for _, _, path in places]
    landing_index = len(places) - 1
    read_from = [resolved[landing_index] / source for source in SOURCES]
    for j, (option, what, path) in enumerate(places):
        for i in range(j):
            other_option, other_what, other_path = places[i]
            a, b = resolved[i], resolved[j]
            if a == b:
                relation = "is"
            elif a in b.parents:
                relation = "lies inside"
            elif b in a.parents:
                relation = "contains"
                if j == landing_index:
                    if not any(a == s or s in a.parents for s in read_from):
                        continue  # beside the landing folder's source folders, which are all gnnrec reads there
                    relation = "has, inside a source folder it reads,"
            else:
                continue
            if option == other_option == "--analytics" and b == a.parent:
                continue  # the store folder holds its own views file
            same = f" (both {b})" if a == b and str(path) != str(other_path) else ""
            raise ValueError(
                f"{option}: {what} {path} {relation} {other_what} {other_path}"
                f"{'' if option == other_option else f' of {other_option}'}{same}; they must be distinct"
            )


def check_writable_file_folder(path: Path, option: str, probe: Callable[[Path], str | None] | None = None) -> None:
    """``path`` names a file (not a folder) whose folder exists or can be created, and can be written to.

    ``probe(folder)`` returns why files cannot be created in an existing folder, or ``None`` (default:
    :func:`probe_writable`, which creates and removes a temporary file, since root passes ``os.access``)."""
    probe = probe or probe_writable
    if path.is_dir():
        raise OptionError(f"{option}: {path} is a folder, not a DuckDB file")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise OptionError(f"{option}: {path} cannot be read and written")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise OptionError(f"{option}: {existing} is a link to nowhere, so the folder {folder} cannot be created")
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"{option}: {path} lies under {existing}, which is a file, not a folder")
    reason = probe(existing)
    if reason is not None:
        if existing == folder:
            raise OptionError(f"{option}: the folder {folder} is not writable ({reason})")
        raise OptionError(f"{option}: the folder {folder} does not exist and cannot be created: {existing} is not "
                          f"writable ({reason})")


def probe_writable(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder``, or ``None``: ``os.access``, then a real temporary file (root
    passes ``os.access`` on any folder of a writable file system)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "permission denied"
    try:
        handle, name = tempfile.mkstemp(prefix=".gnnrec-probe-", dir=folder)
    except OSError as error:
        return error.strerror or type(error).__name__
    os.close(handle)
    os.unlink(name)
    return None


def check_warehouse_file(db: Path) -> None:
    """An existing ``db`` must be a DuckDB database DuckDB can open. Another process holding it is left to the
    run's own lock, which names the holder."""
    import duckdb

    from gnnrec.tasks.ops.db import WarehouseUnreadable, open_database
    from gnnrec.tasks.ops.lock import WarehouseBusy

    if not db.is_file():
        return
    try:
        open_database(db, read_only=True).close()
    except WarehouseUnreadable as error:
        raise OptionError(f"--db: {error}") from error
    except (WarehouseBusy, duckdb.ConnectionException):  # held elsewhere, or open in this very process
        pass
