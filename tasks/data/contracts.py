"""Row contracts for the landing sources (pandera, polars backend).

Every landed value arrives as text; the contracts say what the text must mean (an ID is not blank, a rating is a
finite number in range, a timestamp parses) and each source's ``typed_columns`` turn rows that passed into their
clean types. Rules and types read a value the same way, without leading and trailing whitespace (:func:`stripped`).
Rule names are what an operator reads in ``quarantine.<source>.rule``, so they are spelled out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

RATING_MIN, RATING_MAX = 0.0, 5.0

# Accepted timestamp spellings, tried in order; naive times are UTC. Integer strings are Unix epoch seconds.
_TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%:z",
)
_EPOCH_SECONDS = r"^\d{1,12}$"


def _epoch_seconds(text: pl.Series) -> pl.Series:
    epoch = text.str.contains(_EPOCH_SECONDS)
    if not epoch.any():
        return pl.repeat(None, len(text), dtype=pl.Datetime("us", "UTC"), eager=True)
    return pl.select(
        pl.when(epoch).then(pl.from_epoch(text.cast(pl.Int64, strict=False), time_unit="s").dt.replace_time_zone("UTC"))
    ).to_series()


def _iso_format(spelling: str) -> Callable[[pl.Series], pl.Series]:
    return lambda text: text.str.to_datetime(format=spelling, strict=False, time_zone="UTC", time_unit="us")


# Every accepted spelling as a parser from stripped text to a UTC datetime (null where it does not apply), in the
# order they are tried: the first that gives a value wins. Epoch seconds come last because no value is both all
# digits and ISO 8601, and the ISO spellings are by far the common ones.
_TIMESTAMP_PARSERS = (*(_iso_format(spelling) for spelling in _TIMESTAMP_FORMATS), _epoch_seconds)


def _parse_timestamps(text: pl.Series) -> pl.Series:
    """The first of :data:`_TIMESTAMP_PARSERS` that parses each value, as a naive UTC datetime; null if none does.

    Each parser sees only the values that every earlier one missed, so a column in the first spelling is parsed
    once, not once per spelling.
    """
    parsed = pl.repeat(None, len(text), dtype=pl.Datetime("us", "UTC"), eager=True)
    pending = text.is_not_null().arg_true()  # positions that no parser has read yet
    for parse in _TIMESTAMP_PARSERS:
        if pending.is_empty():
            break
        everything = len(pending) == len(text)
        found = parse(text if everything else text.gather(pending))
        hit = found.is_not_null()
        if everything and hit.all():
            parsed = found
        else:
            parsed = parsed.scatter(pending.filter(hit), found.filter(hit))
        pending = pending.filter(hit.not_())
    return parsed.dt.replace_time_zone(None).alias(text.name)


def stripped(column: str) -> pl.Expr:
    """A landed value as every rule and type reads it: without leading and trailing whitespace."""
    return pl.col(column).str.strip_chars()


def parse_timestamp(text: pl.Expr) -> pl.Expr:
    """Parse stripped text into a naive UTC datetime (microseconds); null where nothing matches."""
    return text.map_batches(_parse_timestamps, return_dtype=pl.Datetime("us"), is_elementwise=True)


def parse_number(text: pl.Expr) -> pl.Expr:
    return text.cast(pl.Float64, strict=False)


# The row rules, by the name an operator reads in ``quarantine.<source>.rule``. Each maps a column's stripped text
# to True where the value keeps the rule; the pandera checks below and :func:`keeps_every_rule` both use them.
RATING_RULE = f"rating_number_in_{RATING_MIN:g}_{RATING_MAX:g}"


def _not_blank(text: pl.Expr) -> pl.Expr:
    return text.str.len_bytes() > 0  # as len_chars() > 0, without counting characters


def _rating_in_range(text: pl.Expr) -> pl.Expr:
    rating = parse_number(text)
    return text.is_null() | (rating.is_not_nan() & rating.is_between(RATING_MIN, RATING_MAX)).fill_null(False)


def _weight_positive(text: pl.Expr) -> pl.Expr:
    weight = parse_number(text)
    return text.is_null() | (weight.is_finite() & (weight > 0)).fill_null(False)


def _timestamp_parses(text: pl.Expr) -> pl.Expr:
    return text.is_null() | parse_timestamp(text).is_not_null()


def _not_self_loop(text: pl.Expr) -> pl.Expr:
    # an edge's two ends, compared as every rule reads them (stripped); the other end is always `src_user_id`
    return text != stripped("src_user_id")


RULES: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "not_blank": _not_blank,
    "not_self_loop": _not_self_loop,
    RATING_RULE: _rating_in_range,
    "weight_positive_number": _weight_positive,
    "timestamp_parses": _timestamp_parses,
}


def _keeps(rule: str, data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(RULES[rule](stripped(data.key)))


class InteractionRow(pa.DataFrameModel):
    """A user did something to an item at a time; ``rating`` only for explicit feedback."""

    user_id: str = pa.Field(nullable=False)
    item_id: str = pa.Field(nullable=False)
    event: str = pa.Field(nullable=False)
    rating: str = pa.Field(nullable=True)
    ts: str = pa.Field(nullable=False)

    @pa.check("user_id", "item_id", "event", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("not_blank", data)

    @pa.check("rating", name=RATING_RULE)
    def rating_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps(RATING_RULE, data)

    @pa.check("ts", name="timestamp_parses")
    def timestamp_parses(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("timestamp_parses", data)


class SocialRow(pa.DataFrameModel):
    """A directed user-user edge (follows, trusts, befriends); ``weight`` is its strength when known."""

    src_user_id: str = pa.Field(nullable=False)
    dst_user_id: str = pa.Field(nullable=False)
    weight: str = pa.Field(nullable=True)
    ts: str = pa.Field(nullable=True)

    @pa.check("src_user_id", "dst_user_id", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("not_blank", data)

    @pa.check("dst_user_id", name="not_self_loop")
    def not_self_loop(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("not_self_loop", data)

    @pa.check("weight", name="weight_positive_number")
    def weight_positive(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("weight_positive_number", data)

    @pa.check("ts", name="timestamp_parses")
    def timestamp_parses(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("timestamp_parses", data)


class KgRow(pa.DataFrameModel):
    """A knowledge-graph triple ``(head, relation, tail)`` over entity IDs."""

    head: str = pa.Field(nullable=False)
    relation: str = pa.Field(nullable=False)
    tail: str = pa.Field(nullable=False)

    @pa.check("head", "relation", "tail", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("not_blank", data)


class ItemEntityRow(pa.DataFrameModel):
    """Links an item to the KG entity that stands for it."""

    item_id: str = pa.Field(nullable=False)
    entity_id: str = pa.Field(nullable=False)

    @pa.check("item_id", "entity_id", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _keeps("not_blank", data)


# A row whose event time is after the end of its partition day (``ds`` + 1 day, UTC) by more than the tolerance
# given to validation breaks this rule; a time exactly at that limit keeps it, and earlier times (late-arriving
# events) keep it whatever their day. It depends on the partition's day, so it is not a pandera check: validation
# applies it to the rows' parsed times (:func:`after_the_day`).
FUTURE_RULE = "ts_not_after_partition_day"


def latest_event_time(ds: date, tolerance: timedelta) -> datetime:
    """The latest event time (naive UTC) a row of partition ``ds`` may carry: the end of the day plus ``tolerance``."""
    return datetime.combine(ds + timedelta(days=1), time()) + tolerance


def after_the_day(parsed: pl.Expr, latest: datetime) -> pl.Expr:
    """True where a parsed event time (naive UTC) breaks :data:`FUTURE_RULE`; null times keep it."""
    return (parsed > pl.lit(latest, pl.Datetime("us"))).fill_null(False)


def keeps_every_rule(model: type[pa.DataFrameModel], parsed_timestamps: Mapping[str, pl.Expr] | None = None) -> pl.Expr | None:
    """True where a row keeps every rule of ``model``, in one pass over a frame of stripped text (:func:`stripped`).

    It is the model's own row checks (nullability and :data:`RULES`, nulls read as pandera reads them), so a row it
    passes is a row pandera passes, and only the others need pandera, which names each broken rule. None when the
    model holds a check that this cannot evaluate row by row; then every row goes to pandera.

    ``parsed_timestamps`` maps a column to an expression of its values already parsed by :func:`parse_timestamp`
    (the clean column), so that ``timestamp_parses`` reads the parse instead of parsing every value again.
    """
    parsed_timestamps = parsed_timestamps or {}
    schema = model.to_schema()
    if schema.checks or schema.unique:
        return None
    keeps = []
    for name, column in schema.columns.items():
        if column.unique or column.regex or column.coerce:
            return None
        if not column.nullable:
            keeps.append(pl.col(name).is_not_null())
        for check in column.checks:
            if check.name not in RULES or check.element_wise:
                return None
            if check.name == "timestamp_parses" and name in parsed_timestamps:
                keeps.append((pl.col(name).is_null() | parsed_timestamps[name].is_not_null()).fill_null(check.ignore_na))
            else:
                keeps.append(RULES[check.name](pl.col(name)).fill_null(check.ignore_na))
    return pl.all_horizontal(keeps) if keeps else pl.lit(True)


@dataclass(frozen=True)
class SourceContract:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    row_model: type[pa.DataFrameModel]
    typed_columns: tuple[pl.Expr, ...]  # the clean columns, over a frame of stripped text (:func:`stripped`)
    event_time: str | None = None  # the column of the event's time, checked against its partition day

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


def _id(column: str) -> pl.Expr:
    # IDs are compared after trimming: a padded ID is the same ID, not a new user or item.
    return pl.col(column)


SOURCES: dict[str, SourceContract] = {
    "interactions": SourceContract(
        "interactions",
        required=("user_id", "item_id", "event", "ts"),
        optional=("rating",),
        row_model=InteractionRow,
        typed_columns=(
            _id("user_id"),
            _id("item_id"),
            pl.col("event").str.to_lowercase(),
            parse_number(pl.col("rating")),
            parse_timestamp(pl.col("ts")),
        ),
        event_time="ts",
    ),
    "social": SourceContract(
        "social",
        required=("src_user_id", "dst_user_id"),
        optional=("weight", "ts"),
        row_model=SocialRow,
        typed_columns=(
            _id("src_user_id"),
            _id("dst_user_id"),
            parse_number(pl.col("weight")),
            parse_timestamp(pl.col("ts")),
        ),
        event_time="ts",
    ),
    "kg": SourceContract(
        "kg",
        required=("head", "relation", "tail"),
        optional=(),
        row_model=KgRow,
        typed_columns=(_id("head"), _id("relation"), _id("tail")),
    ),
    "item_entities": SourceContract(
        "item_entities",
        required=("item_id", "entity_id"),
        optional=(),
        row_model=ItemEntityRow,
        typed_columns=(_id("item_id"), _id("entity_id")),
    ),
}
