"""``recbole-kg``: the knowledge graph of a RecBole dataset alone, ``<name>.kg`` and ``<name>.link``.

Kept for the commands that already name it; the ``recbole`` importer reads the same files (and the rest of a
RecBole dataset). The difference is the default day: ``<name>.kg`` lands as ``kg`` and ``<name>.link`` as
``item_entities``, both on ``--day``, by default the first day of MovieLens 100K's ratings, so RecBole's ml-100k KG
is visible to every run over either MovieLens layout. Other atomic files in the folder are not read.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from gnnrec.tasks.data.importers.base import DAY_COLUMN, DatasetFormatError, ImportRequest, dataset_file, refuse_options
from gnnrec.tasks.data.importers.recbole import LANDED, read_atomic_file

NAME = "recbole-kg"
DEFAULT_DAY = date(1997, 9, 20)  # the first rating in ml-100k's u.data (UTC)


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    refuse_options(request, "a knowledge graph has no split", seed=True)
    day = request.day or DEFAULT_DAY
    kg_path = _the_kg_file(folder)
    link_path = dataset_file(folder, kg_path.with_suffix(".link").name, NAME)
    return {
        LANDED[path.suffix].source: read_atomic_file(path, LANDED[path.suffix]).with_columns(pl.lit(day).alias(DAY_COLUMN))
        for path in (kg_path, link_path)
    }


def _the_kg_file(folder: Path) -> Path:
    found = sorted(folder.glob("*.kg"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise DatasetFormatError(folder, None, f"expected exactly one <name>.kg file, found {what}")
    return found[0]
