"""``recbole``: a dataset in RecBole's atomic files, the form in which RecBole distributes its catalogue of public
datasets (``<name>.inter``, ``<name>.net``, ``<name>.kg``, ``<name>.link``, ``<name>.user``, ``<name>.item``).

Every atomic file is tab-separated, with a header naming each field as ``name:type`` (``token``, ``token_seq``,
``float``, ``float_seq``). The fields read, by file; other fields are not read, and columns may come in any order:

* ``<name>.inter``: ``user_id``, ``item_id``, and where present ``rating`` and ``timestamp`` (Unix seconds) ->
  ``interactions``, event ``rate`` when there is a rating, ``interact`` otherwise.
* ``<name>.net``: ``source_id``, ``target_id`` -> ``social``.
* ``<name>.kg``: ``head_id``, ``relation_id``, ``tail_id`` -> ``kg``.
* ``<name>.link``: ``item_id``, ``entity_id`` -> ``item_entities``.
* ``<name>.user``, ``<name>.item``: features, which gnnrec does not use: recorded in the summary, not landed.

Days. With a ``timestamp``, each interaction lands on the UTC day of its time and the files without times on the
first of those days; without one, everything lands on ``D``. ``--split random80`` / ``random60`` shuffle the
interactions with ``--seed`` and put 80% (60%) on ``D - 1`` and the rest on ``D``; ``random811`` (RecBole's default
8:1:1 ratio) puts 80% on ``D - 2``, 10% on ``D - 1`` and 10% on ``D``; the other files land on the first day of the
split. The default ``D`` is the day after the last interaction when there are times (no row lands before it
happened), else 2020-01-02. Interactions keep their real time as ``ts``; rows without one get midnight of their day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from gnnrec.tasks.data.importers.base import (
    DAY_COLUMN,
    DEFAULT_SEED,
    Built,
    DatasetFormatError,
    ImportOptionError,
    ImportRequest,
    midnight_of_partition,
    random_parts,
    read_lines,
    refuse_options,
    require_numbers,
    split_days,
    split_fields,
    utc_day,
    utc_timestamp,
)

NAME = "recbole"
SPLITS = ("random80", "random60", "random811")
SHARES = {"random80": (0.8, 0.2), "random60": (0.6, 0.4), "random811": (0.8, 0.1, 0.1)}
DEFAULT_DAY = date(2020, 1, 2)
FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
# A timestamp past this is not Unix seconds (milliseconds, or another clock): refused rather than landed centuries on.
LAST_TIMESTAMP = 4_102_444_800  # 2100-01-01T00:00:00Z


@dataclass(frozen=True)
class AtomicFile:
    """How one kind of atomic file lands: the source it feeds, its required fields renamed to the source's
    columns, and the optional fields read when present."""

    source: str
    fields: dict[str, str]
    optional: tuple[str, ...] = ()


LANDED = {
    ".inter": AtomicFile("interactions", {"user_id": "user_id", "item_id": "item_id"}, ("rating", "timestamp")),
    ".net": AtomicFile("social", {"source_id": "src_user_id", "target_id": "dst_user_id"}),
    ".kg": AtomicFile("kg", {"head_id": "head", "relation_id": "relation", "tail_id": "tail"}),
    ".link": AtomicFile("item_entities", {"item_id": "item_id", "entity_id": "entity_id"}),
}
NOT_LANDED = {".user": "user features", ".item": "item features"}


def build(folder: Path, request: ImportRequest) -> Built:
    files = atomic_files(folder)
    notes = tuple(f"{files[s].name} is present and not landed ({what})" for s, what in NOT_LANDED.items() if s in files)
    frames = {kind.source: read_atomic_file(files[suffix], kind) for suffix, kind in LANDED.items() if suffix in files}
    if not frames:
        kinds = ", ".join(f"<name>{suffix}" for suffix in LANDED)
        raise DatasetFormatError(folder, None, f"no atomic file to land: expected at least one of {kinds}")
    interactions = frames.pop("interactions", None)
    if interactions is None:
        if request.split is not None:
            raise ImportOptionError(f"--split: {NAME} splits the interactions, and {folder} has no <name>.inter")
        refuse_options(request, "without <name>.inter there is nothing to shuffle", seed=True)
        day = request.day or DEFAULT_DAY
        return Built({source: frame.with_columns(pl.lit(day).alias(DAY_COLUMN)) for source, frame in frames.items()}, notes)

    timed = "timestamp" in interactions.columns
    if request.split is None:
        if timed:
            refuse_options(request, "with a timestamp field the days come from the timestamps", day=True, seed=True)
            interactions = interactions.with_columns(utc_day(_seconds()).alias(DAY_COLUMN))
            side_day = interactions[DAY_COLUMN].min()
        else:
            refuse_options(request, "without --split everything lands on --day", seed=True)
            side_day = request.day or DEFAULT_DAY
            interactions = interactions.with_columns(pl.lit(side_day).alias(DAY_COLUMN))
    else:
        last = interactions.select(utc_day(_seconds()).max()).item() if timed else None
        days = split_days(request.day or (last + timedelta(days=1) if last else DEFAULT_DAY), len(SHARES[request.split]))
        seed = DEFAULT_SEED if request.seed is None else request.seed
        labels = random_parts(interactions.height, SHARES[request.split], seed)
        interactions = interactions.with_columns(pl.Series(DAY_COLUMN, days, dtype=pl.Date).gather(labels))
        side_day = days[0]

    rated = "rating" in interactions.columns
    landed = {"interactions": interactions.select(
        "user_id",
        "item_id",
        pl.lit("rate" if rated else "interact").alias("event"),
        *([pl.col("rating").cast(pl.Float64)] if rated else []),
        (utc_timestamp(_seconds()) if timed else midnight_of_partition()).alias("ts"),
        DAY_COLUMN,
    )}  # fmt: skip
    for source, frame in frames.items():
        landed[source] = frame.with_columns(pl.lit(side_day, pl.Date).alias(DAY_COLUMN))
    return Built(landed, notes)


def _seconds() -> pl.Expr:
    """A ``timestamp`` field (Unix seconds, possibly with a fraction) as whole seconds."""
    return pl.col("timestamp").cast(pl.Float64).floor().cast(pl.Int64)


def atomic_files(folder: Path) -> dict[str, Path]:
    """The atomic files in ``folder`` by suffix; they must all belong to one dataset (one ``<name>``)."""
    suffixes = (*LANDED, *NOT_LANDED)
    found = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix in suffixes)
    names = sorted({path.stem for path in found})
    if len(names) > 1:
        raise DatasetFormatError(
            folder, None, f"expected the atomic files of one dataset, found several names: {', '.join(names)}"
        )
    return {path.suffix: path for path in found}


def read_atomic_file(path: Path, kind: AtomicFile) -> pl.DataFrame:
    """The fields ``kind`` reads from an atomic file, renamed to its source's columns, every line checked."""
    lines = read_lines(path)
    header = lines["text"][0].split("\t")
    names = [field.split(":", 1)[0] for field in header]
    missing = [name for name in kind.fields if name not in names]
    if missing or len(set(names)) != len(names):
        problem = f"lacks {', '.join(missing)}" if missing else "repeats a field"
        raise DatasetFormatError(
            path, 1, f"header {problem}: expected the fields {', '.join(kind.fields)}, found {header}"
        )
    untyped = [field for field in header if field.partition(":")[2] not in FIELD_TYPES]
    if untyped:
        raise DatasetFormatError(
            path, 1, f"header field {untyped[0]!r} is not name:type with a type among {', '.join(FIELD_TYPES)}"
        )
    fields = split_fields(lines.slice(1), path, tuple(names), "\t")
    optional = [name for name in kind.optional if name in names]
    require_numbers(fields, path, *optional)
    if "timestamp" in optional:
        seconds = pl.col("timestamp").cast(pl.Float64)
        late = fields.filter(~seconds.is_between(-LAST_TIMESTAMP, LAST_TIMESTAMP)).head(1)
        if not late.is_empty():
            raise DatasetFormatError(
                path, late["line"][0], f"timestamp must be Unix seconds (before 2100), found {late['timestamp'][0]!r}"
            )
    return fields.select(*(pl.col(name).alias(column) for name, column in kind.fields.items()), *optional)
