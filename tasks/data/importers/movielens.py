"""``movielens``: MovieLens 100K as published by GroupLens (tab-separated ``user item rating unix_ts``).

By default ``u.data`` lands by the UTC day of each rating's timestamp, so a daily run replays the history.
``--split u1`` (or ``u2``..``u5``, ``ua``, ``ub``) lays out the canonical split instead: ``u1.base`` on ``D - 1`` and
``u1.test`` on ``D``. Each row keeps its real timestamp as ``ts``: the partition day, not ``ts``, decides what the
holdout is, and the contract only asks that ``ts`` parse. The default ``D`` is the day after the last rating, so
no row is landed before it happened.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from gnnrec.tasks.data.importers.base import (
    DAY_COLUMN,
    ImportRequest,
    dataset_file,
    read_table,
    refuse_options,
    split_days,
    utc_day,
    utc_timestamp,
)

NAME = "movielens"
SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
DEFAULT_DAY = date(1998, 4, 23)  # the last rating in u.data is on 1998-04-22 (UTC)
EVENT = "rate"
FIELDS = ("user_id", "item_id", "rating", "timestamp")


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    refuse_options(request, "the MovieLens splits are fixed", seed=True)
    if request.split is None:
        refuse_options(request, "without --split the days come from the timestamps", day=True)
        ratings = _ratings(dataset_file(folder, "u.data", NAME)).with_columns(utc_day(pl.col("timestamp")).alias(DAY_COLUMN))
    else:
        paths = [dataset_file(folder, f"{request.split}.{part}", NAME) for part in ("base", "test")]
        days = split_days(request.day or DEFAULT_DAY, 2)
        ratings = pl.concat(_ratings(path).with_columns(pl.lit(day).alias(DAY_COLUMN)) for path, day in zip(paths, days))
    interactions = ratings.select(
        "user_id",
        "item_id",
        pl.lit(EVENT).alias("event"),
        pl.col("rating").cast(pl.Float64),
        utc_timestamp(pl.col("timestamp")).alias("ts"),
        DAY_COLUMN,
    )
    return {"interactions": interactions}


def _ratings(path: Path) -> pl.DataFrame:
    return read_table(path, FIELDS, integers=("user_id", "item_id", "timestamp"), numbers=("rating",))
