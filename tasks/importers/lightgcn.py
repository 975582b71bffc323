"""``lightgcn``: the NGCF/LightGCN release of Gowalla (and of Yelp2018 and Amazon-Book, which share the layout).

``train.txt`` and ``test.txt`` hold one line per user, ``user item item ...``, in the authors' internal ids;
``user_list.txt`` and ``item_list.txt`` (header ``org_id remap_id``) give the original id of each. The landed rows
carry the original ids. There are no timestamps: the fixed split becomes two days, every training pair on
``D - 1`` and every test pair on ``D``, so ``gnnrec run --ds D --eval-days 1`` tests on exactly the authors' split.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from tasks.importers.base import (
    DAY_COLUMN,
    DatasetFormatError,
    ImportRequest,
    dataset_file,
    midnight_of_partition,
    read_lines,
    read_table,
    require_integers,
    refuse_options,
    split_days,
    translate_ids,
)

NAME = "lightgcn"
DEFAULT_DAY = date(2020, 1, 2)
EVENT = "checkin"


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    refuse_options(request, "the lightgcn split is fixed", seed=True)
    train_day, test_day = split_days(request.day or DEFAULT_DAY, 2)
    paths = {name: dataset_file(folder, name, NAME) for name in ("train.txt", "test.txt", "user_list.txt", "item_list.txt")}
    users = _id_map(paths["user_list.txt"])
    items = _id_map(paths["item_list.txt"])
    pairs = []
    for name, day in (("train.txt", train_day), ("test.txt", test_day)):
        path = paths[name]
        rows = _user_item_lists(path)
        rows = translate_ids(rows, path, "user_id", users, paths["user_list.txt"])
        rows = translate_ids(rows, path, "item_id", items, paths["item_list.txt"])
        pairs.append(rows.with_columns(pl.lit(day).alias(DAY_COLUMN)))
    interactions = pl.concat(pairs).select(
        "user_id", "item_id", pl.lit(EVENT).alias("event"), midnight_of_partition().alias("ts"), DAY_COLUMN
    )
    return {"interactions": interactions}


def _id_map(path: Path) -> pl.DataFrame:
    """``remap_id -> org_id`` as columns ``internal`` (Int64) and ``original`` (the org id's text)."""
    fields = ("org_id", "remap_id")
    table = read_table(path, fields, separator=" ", header=" ".join(fields), integers=fields)
    table = table.with_columns(pl.col("remap_id").cast(pl.Int64).alias("internal"))
    repeated = table.filter(~pl.col("internal").is_first_distinct())
    if not repeated.is_empty():
        raise DatasetFormatError(path, repeated["line"][0], f"remap_id {repeated['remap_id'][0]} is listed twice")
    return table.select("internal", pl.col("org_id").alias("original"))


def _user_item_lists(path: Path) -> pl.DataFrame:
    """One row per (user, item) of a ``user item item ...`` file, in file order, with the line it came from.

    A line with a user and no items is allowed (the authors' loader reads it as a user without pairs).
    """
    tokens = read_lines(path).select("line", pl.col("text").str.extract_all(r"\S+").alias("tokens"))
    empty = tokens.filter(pl.col("tokens").list.len() == 0)
    if not empty.is_empty():
        raise DatasetFormatError(path, empty["line"][0], "expected a user id followed by item ids, found an empty line")
    users = tokens.select(
        "line", pl.col("tokens").list.first().alias("user_id"), pl.col("tokens").list.slice(1).alias("item_id")
    )
    require_integers(users, path, "user_id")
    pairs = users.explode("item_id").drop_nulls("item_id")
    require_integers(pairs, path, "item_id")
    return pairs
