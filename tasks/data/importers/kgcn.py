"""``kgcn``: Last.FM (hetrec2011) as used by KGCN, with its Freebase knowledge graph.

* ``user_artists.dat`` (header ``userID artistID weight``, tab) lands as ``interactions``, event ``listen``. The
  weight is a play count, not a rating, and is not landed anywhere.
* ``kg.txt`` (``head relation tail``, tab, integer entity ids) lands as ``kg``.
* ``item_index2entity_id.txt`` (``artistID entity``) lands as ``item_entities``.

By default everything lands on ``D``. ``--split random622`` follows KGCN's preprocessing and split: only listens of
artists linked to the KG are kept (21,173 of 92,834, the positives of KGCN's ``ratings_final.txt``), a ``--seed``
shuffle puts 60% on ``D - 2`` (train), 20% on ``D - 1`` (validation) and 20% on ``D`` (test), and the KG and the
links land on ``D - 2`` so that training sees them. Rows have no time of their own; ``ts`` is midnight of the day.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from gnnrec.tasks.data.importers.base import (
    DAY_COLUMN,
    DEFAULT_SEED,
    ImportRequest,
    dataset_file,
    midnight_of_partition,
    random_parts,
    read_table,
    refuse_options,
    split_days,
)

NAME = "kgcn"
SPLITS = ("random622",)
SHARES = (0.6, 0.2, 0.2)
DEFAULT_DAY = date(2020, 1, 2)
EVENT = "listen"


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    listens_path = dataset_file(folder, "user_artists.dat", NAME)
    kg_path = dataset_file(folder, "kg.txt", NAME)
    links_path = dataset_file(folder, "item_index2entity_id.txt", NAME)
    listen_fields = ("user_id", "item_id", "weight")
    listens = read_table(listens_path, listen_fields, header="userID\tartistID\tweight", integers=listen_fields)
    kg = read_table(kg_path, ("head", "relation", "tail"), integers=("head", "tail"))
    links = read_table(links_path, ("item_id", "entity_id"), integers=("item_id", "entity_id"))

    day = request.day or DEFAULT_DAY
    if request.split is None:
        refuse_options(request, "without --split everything lands on --day", seed=True)
        listens = listens.with_columns(pl.lit(day).alias(DAY_COLUMN))
        side_day = day
    else:
        listens = listens.filter(pl.col("item_id").is_in(links["item_id"].implode()))
        seed = DEFAULT_SEED if request.seed is None else request.seed
        labels = random_parts(listens.height, SHARES, seed)
        days = split_days(day, len(SHARES))
        listens = listens.with_columns(pl.Series(DAY_COLUMN, days, dtype=pl.Date).gather(labels))
        side_day = days[0]

    interactions = listens.select(
        "user_id", "item_id", pl.lit(EVENT).alias("event"), midnight_of_partition().alias("ts"), DAY_COLUMN
    )
    return {
        "interactions": interactions,
        "kg": kg.select("head", "relation", "tail", pl.lit(side_day).alias(DAY_COLUMN)),
        "item_entities": links.select("item_id", "entity_id", pl.lit(side_day).alias(DAY_COLUMN)),
    }
