"""Importers: turn a published recommendation dataset into gnnrec's landing folder.

Each format (one module each) reads the files exactly as published, checks them line by line, and lays the rows
out as daily partitions so that the paper's protocol becomes a choice of days: a fixed or random train/test split
puts the training rows on ``D - 1`` and the test rows on ``D``, and ``gnnrec run --ds D --eval-days 1`` then
tests on exactly that split. External IDs are the dataset's own IDs, as text.

``IMPORTERS`` is the registry the ``gnnrec import`` command offers; :func:`import_dataset` runs one.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from gnnrec.tasks.data.importers import ciao, diffnet, kgcn, lastfm_social, lightgcn, movielens, recbole, recbole_kg
from gnnrec.tasks.data.importers.base import (
    Built,
    DEFAULT_SEED,
    DatasetFormatError,
    ImportOptionError,
    ImportRequest,
    Importer,
    ImportSummary,
    write_landing,
)

__all__ = [
    "DEFAULT_SEED", "IMPORTERS", "DatasetFormatError", "ImportOptionError", "ImportSummary", "Importer", "import_dataset",
]  # fmt: skip

IMPORTERS: dict[str, Importer] = {
    "lightgcn": Importer(
        "lightgcn", "LightGCN/NGCF train.txt + test.txt (Gowalla, Yelp2018, Amazon-Book): train on D-1, test on D",
        (), lightgcn.build,
    ),
    "movielens": Importer(
        "movielens", "MovieLens 100K u.data: days from the timestamps; --split u1..u5/ua/ub: base on D-1, test on D",
        movielens.SPLITS, movielens.build,
    ),
    "recbole": Importer(
        "recbole", "RecBole atomic files <name>.inter/.net/.kg/.link: days from the timestamps, else all on D; "
        "--split random80/random60 (D-1, D), random811 (D-2, D-1, D)", recbole.SPLITS, recbole.build,
    ),
    "recbole-kg": Importer(
        "recbole-kg", "RecBole <name>.kg + <name>.link alone (ml-100k): KG triples and item links on one day",
        (), recbole_kg.build,
    ),
    "ciao": Importer(
        "ciao", "Ciao .mat ratings + trust: days from the timestamps; --split random80/random60 (GraphRec): "
        "train D-1, test D", ciao.SPLITS, ciao.build,
    ),
    "kgcn": Importer(
        "kgcn", "KGCN Last.FM user_artists.dat + kg.txt: everything on D; --split random622: D-2 / D-1 / D",
        kgcn.SPLITS, kgcn.build,
    ),
    "lastfm-social": Importer(
        "lastfm-social", "LightGCN-PyTorch Last.FM data1.txt + test1.txt + trustnetwork.txt: train D-1, test D",
        (), lastfm_social.build,
    ),
    "diffnet": Importer(
        "diffnet", "DiffNet Yelp yelp.{train,val,test}.rating + yelp.links: train + links D-2, val D-1, test D",
        (), diffnet.build,
    ),
}  # fmt: skip


def import_dataset(
    format_name: str, folder: Path, landing: Path, *, day: date | None = None, split: str | None = None,
    seed: int | None = None,
) -> ImportSummary:
    """Read the dataset in ``folder`` as ``format_name`` and land it under ``landing``; return what was written.

    Raises :class:`ImportOptionError` for an option the format does not take and :class:`DatasetFormatError` for a
    missing or malformed file; nothing is written in either case.
    """
    importer = IMPORTERS.get(format_name)
    if importer is None:
        raise ImportOptionError(f"unknown format {format_name!r}; choose one of {', '.join(IMPORTERS)}")
    if split is not None and split not in importer.splits:
        known = f"one of {', '.join(importer.splits)}" if importer.splits else "none (its split is fixed)"
        raise ImportOptionError(f"--split: {format_name} has no split {split!r}; it knows {known}")
    if not folder.is_dir():
        raise ImportOptionError(f"no dataset folder {folder}")
    built = importer.build(folder, ImportRequest(day=day, split=split, seed=seed))
    if not isinstance(built, Built):
        built = Built(built)
    if all(frame.is_empty() for frame in built.frames.values()):
        raise DatasetFormatError(folder, None, f"no rows to land: the {format_name} files hold none")
    return write_landing(landing, format_name, built.frames, built.notes)
