"""``lightgcn``: the NGCF/LightGCN release of Gowalla, Yelp2018 and Amazon-Book (one layout for the three).

``train.txt`` and ``test.txt`` hold one line per user, ``user item item ...``, in the authors' internal (remapped)
ids. ``user_list.txt`` and ``item_list.txt`` (header ``org_id remap_id``; Amazon-Book's item list adds a
``freebase_id`` column, which is not landed) give the original id of each: Gowalla's are numbers, Yelp2018's
strings such as ``nkN_do3fJ9xekchVC-v68A``, Amazon-Book's ASINs. The landed rows carry the original ids. Many
copies of these datasets ship only ``train.txt`` and ``test.txt``: without a list, its side keeps the remapped ids
as external ids, and the import's summary says so. There are no timestamps: the fixed split becomes two days, every
training pair on ``D - 1`` and every test pair on ``D``, so ``gnnrec run --ds D --eval-days 1`` tests on exactly
the authors' split.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from gnnrec.tasks.data.importers.base import (
    DAY_COLUMN,
    Built,
    DatasetFormatError,
    ImportRequest,
    dataset_file,
    midnight_of_partition,
    read_lines,
    require_integers,
    refuse_options,
    shown,
    split_days,
    translate_ids,
)

NAME = "lightgcn"
DEFAULT_DAY = date(2020, 1, 2)
EVENT = "checkin"
ID_LISTS = {"user_id": "user_list.txt", "item_id": "item_list.txt"}
HEADERS = ("org_id remap_id", "org_id remap_id freebase_id")


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    refuse_options(request, "the lightgcn split is fixed", seed=True)
    train_day, test_day = split_days(request.day or DEFAULT_DAY, 2)
    paths = {name: dataset_file(folder, name, NAME) for name in ("train.txt", "test.txt")}
    # An id list is optional: without it, that side's external ids are the remapped ids themselves.
    lists = {column: folder / name for column, name in ID_LISTS.items()}
    maps = {column: _id_map(path) for column, path in lists.items() if path.is_file()}
    pairs = []
    for name, day in (("train.txt", train_day), ("test.txt", test_day)):
        path = paths[name]
        rows = _user_item_lists(path)
        for column, mapping in maps.items():
            rows = translate_ids(rows, path, column, mapping, lists[column])
        pairs.append(rows.with_columns(pl.lit(day).alias(DAY_COLUMN)))
    interactions = pl.concat(pairs).select(
        *(pl.col(c) if c in maps else pl.col(c).cast(pl.Int64).cast(pl.String) for c in ID_LISTS),
        pl.lit(EVENT).alias("event"), midnight_of_partition().alias("ts"), DAY_COLUMN,
    )  # fmt: skip
    notes = tuple(
        f"{lists[column].name} is absent: {column.removesuffix('_id')}s keep the remapped ids of train.txt and "
        "test.txt as their external ids"
        for column in ID_LISTS if column not in maps
    )  # fmt: skip
    return Built({"interactions": interactions}, notes)


def _id_map(path: Path) -> pl.DataFrame:
    """``remap_id -> org_id`` as columns ``internal`` (Int64) and ``original`` (the org id's text).

    An org id is any token without white space; a ``freebase_id`` column, where the header names one, may be
    absent from a line (an item without a KG entity) and is not read.
    """
    lines = read_lines(path)
    header = lines["text"][0].split() if not lines.is_empty() else []
    if " ".join(header) not in HEADERS:
        expected = " or ".join(repr(h) for h in HEADERS)
        raise DatasetFormatError(path, 1, f"expected the header {expected}, found {shown(lines['text'][0])}")
    tokens = lines.slice(1).select("line", "text", pl.col("text").str.extract_all(r"\S+").alias("tokens"))
    wrong = tokens.filter(~pl.col("tokens").list.len().is_between(2, len(header)))
    if not wrong.is_empty():
        line, text, found = wrong.row(0)
        fields = "org_id remap_id" + (" [freebase_id]" if len(header) == 3 else "")
        raise DatasetFormatError(path, line, f"expected the fields {fields}, found {len(found)}: {shown(text)}")
    table = tokens.select(
        "line", pl.col("tokens").list.get(0).alias("org_id"), pl.col("tokens").list.get(1).alias("remap_id")
    )
    require_integers(table, path, "remap_id")
    table = table.with_columns(pl.col("remap_id").cast(pl.Int64).alias("internal"))
    for column, what in (("internal", "remap_id"), ("org_id", "org_id")):
        repeated = table.filter(~pl.col(column).is_first_distinct())
        if not repeated.is_empty():
            raise DatasetFormatError(path, repeated["line"][0], f"{what} {repeated[what][0]} is listed twice")
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
