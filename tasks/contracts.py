"""Row contracts for the landing sources (pandera, polars backend).

Every landed value arrives as text; the contracts say what the text must mean (an ID is not blank, a rating is a
finite number in range, a timestamp parses) and :func:`typed` turns rows that passed into their clean types.
Rule names are what an operator reads in ``quarantine.<source>.rule``, so they are spelled out.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def parse_timestamp(column: str) -> pl.Expr:
    """Parse a text column into a naive UTC datetime (microseconds); null where nothing matches."""
    text = pl.col(column).str.strip_chars()
    epoch = pl.when(text.str.contains(_EPOCH_SECONDS)).then(
        pl.from_epoch(text.cast(pl.Int64, strict=False), time_unit="s").dt.replace_time_zone("UTC")
    )
    parsed = [text.str.to_datetime(format=f, strict=False, time_zone="UTC", time_unit="us") for f in _TIMESTAMP_FORMATS]
    return pl.coalesce([epoch, *parsed]).dt.replace_time_zone(None)


def parse_number(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)


def _not_blank(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).str.strip_chars().str.len_chars() > 0)


def _timestamp_parses(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).is_null() | parse_timestamp(data.key).is_not_null())


class InteractionRow(pa.DataFrameModel):
    """A user did something to an item at a time; ``rating`` only for explicit feedback."""

    user_id: str = pa.Field(nullable=False)
    item_id: str = pa.Field(nullable=False)
    event: str = pa.Field(nullable=False)
    rating: str = pa.Field(nullable=True)
    ts: str = pa.Field(nullable=False)

    @pa.check("user_id", "item_id", "event", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _not_blank(data)

    @pa.check("rating", name=f"rating_number_in_{RATING_MIN:g}_{RATING_MAX:g}")
    def rating_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        rating = parse_number(data.key)
        return data.lazyframe.select(
            pl.col(data.key).is_null() | (rating.is_not_nan() & rating.is_between(RATING_MIN, RATING_MAX)).fill_null(False)
        )

    @pa.check("ts", name="timestamp_parses")
    def timestamp_parses(cls, data: PolarsData) -> pl.LazyFrame:
        return _timestamp_parses(data)


class SocialRow(pa.DataFrameModel):
    """A directed user-user edge (follows, trusts, befriends); ``weight`` is its strength when known."""

    src_user_id: str = pa.Field(nullable=False)
    dst_user_id: str = pa.Field(nullable=False)
    weight: str = pa.Field(nullable=True)
    ts: str = pa.Field(nullable=True)

    @pa.check("src_user_id", "dst_user_id", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _not_blank(data)

    @pa.check("weight", name="weight_positive_number")
    def weight_positive(cls, data: PolarsData) -> pl.LazyFrame:
        weight = parse_number(data.key)
        return data.lazyframe.select(
            pl.col(data.key).is_null() | (weight.is_finite() & (weight > 0)).fill_null(False)
        )

    @pa.check("ts", name="timestamp_parses")
    def timestamp_parses(cls, data: PolarsData) -> pl.LazyFrame:
        return _timestamp_parses(data)


class KgRow(pa.DataFrameModel):
    """A knowledge-graph triple ``(head, relation, tail)`` over entity IDs."""

    head: str = pa.Field(nullable=False)
    relation: str = pa.Field(nullable=False)
    tail: str = pa.Field(nullable=False)

    @pa.check("head", "relation", "tail", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _not_blank(data)


class ItemEntityRow(pa.DataFrameModel):
    """Links an item to the KG entity that stands for it."""

    item_id: str = pa.Field(nullable=False)
    entity_id: str = pa.Field(nullable=False)

    @pa.check("item_id", "entity_id", name="not_blank")
    def not_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _not_blank(data)


@dataclass(frozen=True)
class SourceContract:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    row_model: type[pa.DataFrameModel]
    typed_columns: tuple[pl.Expr, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


def _id(column: str) -> pl.Expr:
    # IDs are compared after trimming: a padded ID is the same ID, not a new user or item.
    return pl.col(column).str.strip_chars().alias(column)


SOURCES: dict[str, SourceContract] = {
    "interactions": SourceContract(
        "interactions",
        required=("user_id", "item_id", "event", "ts"),
        optional=("rating",),
        row_model=InteractionRow,
        typed_columns=(
            _id("user_id"),
            _id("item_id"),
            pl.col("event").str.strip_chars().str.to_lowercase().alias("event"),
            parse_number("rating").alias("rating"),
            parse_timestamp("ts").alias("ts"),
        ),
    ),
    "social": SourceContract(
        "social",
        required=("src_user_id", "dst_user_id"),
        optional=("weight", "ts"),
        row_model=SocialRow,
        typed_columns=(
            _id("src_user_id"),
            _id("dst_user_id"),
            parse_number("weight").alias("weight"),
            parse_timestamp("ts").alias("ts"),
        ),
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
