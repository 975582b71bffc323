"""``lastfm-social``: Last.FM with friendships as shipped by LightGCN-PyTorch (``data/lastfm``).

``data1.txt`` (train) and ``test1.txt`` (test) are tab-separated ``user artist count``; the count is a play count
(sometimes written as a float, ``3.2466e+05``) and is not landed anywhere. ``trustnetwork.txt`` is ``user friend``.
The fixed split lands as days: training listens and the friendships on ``D - 1``, test listens on ``D``; ``ts`` is
midnight of the day. IDs are the file's own (1-based indices, not hetrec's ``userID``/``artistID``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from gnnrec.tasks.data.importers.base import (
    DAY_COLUMN,
    ImportRequest,
    dataset_file,
    midnight_of_partition,
    read_table,
    refuse_options,
    split_days,
)

NAME = "lastfm-social"
DEFAULT_DAY = date(2020, 1, 2)
EVENT = "listen"
LISTEN_FIELDS = ("user_id", "item_id", "count")


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    refuse_options(request, "the lastfm-social split is fixed", seed=True)
    train_day, test_day = split_days(request.day or DEFAULT_DAY, 2)
    paths = {name: dataset_file(folder, name, NAME) for name in ("data1.txt", "test1.txt", "trustnetwork.txt")}
    listens = pl.concat(
        read_table(paths[name], LISTEN_FIELDS, integers=("user_id", "item_id"), numbers=("count",)).with_columns(
            pl.lit(day).alias(DAY_COLUMN)
        )
        for name, day in (("data1.txt", train_day), ("test1.txt", test_day))
    )
    friends = read_table(paths["trustnetwork.txt"], ("src_user_id", "dst_user_id"), integers=("src_user_id", "dst_user_id"))
    return {
        "interactions": listens.select(
            "user_id", "item_id", pl.lit(EVENT).alias("event"), midnight_of_partition().alias("ts"), DAY_COLUMN
        ),
        "social": friends.select("src_user_id", "dst_user_id", pl.lit(train_day).alias(DAY_COLUMN)),
    }
