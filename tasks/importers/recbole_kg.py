"""``recbole-kg``: a RecBole knowledge-graph pair of atomic files, ``<name>.kg`` and ``<name>.link``.

``<name>.kg`` (header ``head_id:token relation_id:token tail_id:token``, tab-separated) lands as ``kg`` and
``<name>.link`` (header ``item_id:token entity_id:token``) as ``item_entities``, both on one day. The default day
is the first day of MovieLens 100K's ratings, so the ml-100k KG is visible to every run over either MovieLens
layout; pass ``--day`` for another dataset.
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
    read_lines,
    refuse_options,
    split_fields,
)

NAME = "recbole-kg"
DEFAULT_DAY = date(1997, 9, 20)  # the first rating in ml-100k's u.data (UTC)
KG_FIELDS = {"head_id": "head", "relation_id": "relation", "tail_id": "tail"}
LINK_FIELDS = {"item_id": "item_id", "entity_id": "entity_id"}


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    refuse_options(request, "a knowledge graph has no split", seed=True)
    day = request.day or DEFAULT_DAY
    kg_path = _the_kg_file(folder)
    link_path = dataset_file(folder, kg_path.with_suffix(".link").name, NAME)
    kg = _atomic_file(kg_path, KG_FIELDS)
    links = _atomic_file(link_path, LINK_FIELDS)
    return {
        "kg": kg.with_columns(pl.lit(day).alias(DAY_COLUMN)),
        "item_entities": links.with_columns(pl.lit(day).alias(DAY_COLUMN)),
    }


def _the_kg_file(folder: Path) -> Path:
    found = sorted(folder.glob("*.kg"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise DatasetFormatError(folder, None, f"expected exactly one <name>.kg file, found {what}")
    return found[0]


def _atomic_file(path: Path, wanted: dict[str, str]) -> pl.DataFrame:
    """The ``wanted`` columns of a RecBole atomic file, whose header names each field as ``name:type``, renamed."""
    lines = read_lines(path)
    header = lines["text"][0].split("\t")
    names = [field.split(":", 1)[0] for field in header]
    missing = [name for name in wanted if name not in names]
    if missing or len(set(names)) != len(names):
        problem = f"lacks {', '.join(missing)}" if missing else "repeats a field"
        raise DatasetFormatError(path, 1, f"header {problem}: expected the fields {', '.join(wanted)}, found {header}")
    fields = split_fields(lines.slice(1), path, tuple(names), "\t")
    return fields.select(pl.col(name).alias(column) for name, column in wanted.items())
