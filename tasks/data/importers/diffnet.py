"""``diffnet``: the Yelp data released with DiffNet (Wu et al., SIGIR 2019; ``PeiJieSun/diffnet``).

``yelp.train.rating``, ``yelp.val.rating`` and ``yelp.test.rating`` are tab-separated ``user item label`` (the
label is always 1: an implicit interaction; it is not landed), and ``yelp.links`` is ``user friend label``. The
authors' split lands as days: training interactions and the links (as social edges, ``user -> friend``) on
``D - 2``, validation on ``D - 1``, test on ``D``; ``ts`` is midnight of the day. Run with ``--ds D --eval-days 1``
to test on the authors' test file, training on train + validation (the released code trains on train only and
watches validation; gnnrec's own early stopping carves its validation part from the training days instead).
IDs are the files' own indices, as text. A link repeated in the file lands once.
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

NAME = "diffnet"
DEFAULT_DAY = date(2020, 1, 3)
EVENT = "visit"
FILES = ("yelp.train.rating", "yelp.val.rating", "yelp.test.rating")
FIELDS = ("user_id", "item_id", "label")


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    refuse_options(request, "the diffnet split is fixed", seed=True)
    days = split_days(request.day or DEFAULT_DAY, 3)
    paths = {name: dataset_file(folder, name, NAME) for name in (*FILES, "yelp.links")}
    interactions = pl.concat(
        read_table(paths[name], FIELDS, integers=("user_id", "item_id", "label")).with_columns(pl.lit(day).alias(DAY_COLUMN))
        for name, day in zip(FILES, days, strict=True)
    )
    links = read_table(paths["yelp.links"], ("src_user_id", "dst_user_id", "label"),
                       integers=("src_user_id", "dst_user_id", "label"))
    links = links.filter(pl.col("src_user_id") != pl.col("dst_user_id")).unique(
        ["src_user_id", "dst_user_id"], keep="first", maintain_order=True
    )
    return {
        "interactions": interactions.select(
            "user_id", "item_id", pl.lit(EVENT).alias("event"), midnight_of_partition().alias("ts"), DAY_COLUMN
        ),
        "social": links.select("src_user_id", "dst_user_id", pl.lit(days[0]).alias(DAY_COLUMN)),
    }
