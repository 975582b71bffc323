"""What every importer shares: strict readers that name the file and line of anything unexpected, the day layout
of a split, and the writer that lands one Parquet file per (source, day).

An importer is a plain function ``build(folder, request) -> {source: frame}`` (or a :class:`Built`, when it has
something to say about how it read the files). Each frame holds the landing contract's columns plus ``ds``, the
day the row lands on; :func:`write_landing` does the rest.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from gnnrec.tasks.data.contracts import SOURCES
from gnnrec.tasks.data.ingest import partition_dir

DAY_COLUMN = "ds"
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_SEED = 0
# Published files hold ids of a few digits; the cap keeps the cast to Int64 (used to join id maps) exact.
INTEGER_PATTERN = r"^[0-9]{1,18}$"
_SHOWN_CHARS = 60


class DatasetFormatError(ValueError):
    """A dataset file is missing or not in its published format; the message names the file and the 1-based line
    (``unit="row"`` for a matrix row)."""

    def __init__(self, path: Path, line: int | None, problem: str, unit: str = "line"):
        self.path, self.line, self.problem = path, line, problem
        where = str(path) if line is None else f"{path}, {unit} {line}"
        super().__init__(f"{where}: {problem}")


class ImportOptionError(ValueError):
    """An option that the format or split does not take, or a split the format does not know."""


@dataclass(frozen=True)
class ImportRequest:
    """The options of one import; ``None`` means not given."""

    day: date | None = None
    split: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Built:
    """What an importer read: the frames to land and ``notes``, sentences a person should read in the summary
    (an ID list that was absent, a file that was present and not landed)."""

    frames: dict[str, pl.DataFrame]
    notes: tuple[str, ...] = ()


Build = Callable[[Path, ImportRequest], "dict[str, pl.DataFrame] | Built"]


@dataclass(frozen=True)
class Importer:
    """A published format: the splits it lays out (besides its default layout) and the function that reads it."""

    name: str
    description: str
    splits: tuple[str, ...]
    build: Build


@dataclass(frozen=True)
class ImportSummary:
    rows: dict[str, int]
    days: list[date]
    files: list[Path]
    notes: tuple[str, ...] = ()  # what the importer says about how it read the files, one sentence each


# ---------------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------------


def refuse_options(request: ImportRequest, why: str, *, day: bool = False, seed: bool = False) -> None:
    """Raise when ``--day`` or ``--seed`` is given where ``why`` says it does not apply."""
    for refused, option, value in ((day, "--day", request.day), (seed, "--seed", request.seed)):
        if refused and value is not None:
            raise ImportOptionError(f"{option} does not apply: {why}")


def split_days(day: date, parts: int) -> list[date]:
    """The days of a split into ``parts`` parts whose last part (the test set) lands on ``day``."""
    return [day - timedelta(days=parts - 1 - k) for k in range(parts)]


def random_parts(n: int, shares: tuple[float, ...], seed: int) -> np.ndarray:
    """Label each of ``n`` rows with its part of a seeded random split.

    Every part after the first gets ``int(n * share)`` rows and the first (training) part the rest, as the
    papers' own split scripts do; which rows go where is a seeded permutation.
    """
    tail = [int(n * share) for share in shares[1:]]
    sizes = [n - sum(tail), *tail]
    labels = np.empty(n, dtype=np.int64)
    labels[np.random.default_rng(seed).permutation(n)] = np.repeat(np.arange(len(shares)), sizes)
    return labels


# ---------------------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------------------


def dataset_file(folder: Path, name: str, format_name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DatasetFormatError(path, None, f"missing: the {format_name} format needs this file")
    return path


def read_lines(path: Path) -> pl.DataFrame:
    """Every line of a text file without its line break (``\\n`` or ``\\r\\n``): columns ``line`` (1-based), ``text``.

    Every published file ends with a line break, so a last line without one means the file was cut short.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetFormatError(path, data.count(b"\n", 0, error.start) + 1, "not UTF-8 text") from None
    if not text:
        raise DatasetFormatError(path, None, "the file is empty")
    if not text.endswith("\n"):
        raise DatasetFormatError(path, text.count("\n") + 1, "no line break at the end: the file looks truncated")
    lines = pl.Series("text", text[:-1].split("\n")).str.strip_suffix("\r")
    return pl.DataFrame({"line": pl.int_range(1, len(lines) + 1, eager=True, dtype=pl.Int64), "text": lines})


def shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def take_header(lines: pl.DataFrame, path: Path, expected: str) -> pl.DataFrame:
    """Check that line 1 is exactly ``expected`` and return the lines after it."""
    if lines.is_empty() or lines["text"][0] != expected:
        found = lines["text"][0] if not lines.is_empty() else ""
        raise DatasetFormatError(path, 1, f"expected the header {expected!r}, found {shown(found)}")
    return lines.slice(1)


def split_fields(lines: pl.DataFrame, path: Path, fields: tuple[str, ...], separator: str) -> pl.DataFrame:
    """Split every line into exactly ``len(fields)`` text columns named ``fields`` (plus ``line``)."""
    parts = lines.select("line", "text", pl.col("text").str.split(separator).alias("parts"))
    wrong = parts.filter(pl.col("parts").list.len() != len(fields))
    if not wrong.is_empty():
        line, text, found = wrong.row(0)
        name = {"\t": "tab", " ": "space"}.get(separator, repr(separator))
        raise DatasetFormatError(
            path, line, f"expected {len(fields)} {name}-separated fields ({', '.join(fields)}), "
            f"found {len(found)}: {shown(text)}",
        )  # fmt: skip
    return parts.select("line", *(pl.col("parts").list.get(k).alias(field) for k, field in enumerate(fields)))


def require_integers(frame: pl.DataFrame, path: Path, *fields: str) -> None:
    """Raise at the first line where one of ``fields`` is not a non-negative integer (an id or a count)."""
    _require(frame, path, fields, lambda c: pl.col(c).str.contains(INTEGER_PATTERN), "a non-negative integer")


def require_numbers(frame: pl.DataFrame, path: Path, *fields: str) -> None:
    """Raise at the first line where one of ``fields`` is not a finite number."""
    _require(frame, path, fields, lambda c: pl.col(c).cast(pl.Float64, strict=False).is_finite(), "a number")


def _require(frame: pl.DataFrame, path: Path, fields: tuple[str, ...], valid: Callable[[str], pl.Expr], what: str) -> None:
    if not fields:
        return
    bad = frame.filter(~pl.all_horizontal(valid(field).fill_null(False) for field in fields)).head(1)
    if bad.is_empty():
        return
    verdicts = bad.select(valid(field).fill_null(False).alias(field) for field in fields).row(0, named=True)
    field = next(f for f in fields if not verdicts[f])
    raise DatasetFormatError(path, bad["line"][0], f"{field} must be {what}, found {shown(bad[field][0] or '')}")


def read_table(path: Path, fields: tuple[str, ...], *, separator: str = "\t", header: str | None = None,
               integers: tuple[str, ...] = (), numbers: tuple[str, ...] = ()) -> pl.DataFrame:
    """A delimited text file as text columns ``fields`` plus ``line``, checked field by field."""
    lines = read_lines(path)
    if header is not None:
        lines = take_header(lines, path, header)
    frame = split_fields(lines, path, fields, separator)
    require_integers(frame, path, *integers)
    require_numbers(frame, path, *numbers)
    return frame


def translate_ids(frame: pl.DataFrame, path: Path, column: str, mapping: pl.DataFrame, mapping_path: Path) -> pl.DataFrame:
    """Replace the internal ids in ``column`` by the original ids of ``mapping`` (columns ``internal``, ``original``).

    An internal id the mapping lacks is an error at the line that uses it.
    """
    keyed = frame.with_columns(pl.col(column).cast(pl.Int64).alias("internal"))
    joined = keyed.join(mapping, on="internal", how="left", maintain_order="left")
    unknown = joined.filter(pl.col("original").is_null())
    if not unknown.is_empty():
        row = unknown.row(0, named=True)
        raise DatasetFormatError(path, row["line"], f"{column} {row[column]} is not listed in {mapping_path.name}")
    return joined.drop(column, "internal").rename({"original": column})


# ---------------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------------


def utc_timestamp(epoch_seconds: pl.Expr) -> pl.Expr:
    """Unix seconds as the contract's ISO-8601 UTC text, ``2026-01-03T14:05:09Z``."""
    return pl.from_epoch(epoch_seconds.cast(pl.Int64), time_unit="s").dt.strftime(TS_FORMAT)


def utc_day(epoch_seconds: pl.Expr) -> pl.Expr:
    return pl.from_epoch(epoch_seconds.cast(pl.Int64), time_unit="s").dt.date()


def midnight_of_partition() -> pl.Expr:
    """The start of each row's landing day, for sources that have no timestamps of their own."""
    return pl.col(DAY_COLUMN).dt.strftime("%Y-%m-%dT00:00:00Z")


# ---------------------------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------------------------


def write_landing(
    landing: Path, format_name: str, frames: dict[str, pl.DataFrame], notes: tuple[str, ...] = ()
) -> ImportSummary:
    """Land each frame as ``<landing>/<source>/ds=<day>/<format_name>.parquet``, one file per (source, day).

    A partition written here is replaced whole (whatever it held before is removed); no other partition is touched.
    The file appears by an atomic rename, so an ingest running meanwhile sees the old file or the new one.
    The same frames always give byte-identical files.
    """
    rows: dict[str, int] = {}
    days: set[date] = set()
    files: list[Path] = []
    for source, frame in frames.items():
        columns = [c for c in SOURCES[source].columns if c in frame.columns]
        by_day = frame.partition_by(DAY_COLUMN, as_dict=True, include_key=False, maintain_order=True)
        for (day,), part in sorted(by_day.items()):
            path = partition_dir(landing, source, day) / f"{format_name}.parquet"
            _replace_partition(path, part.select(columns))
            files.append(path)
            days.add(day)
        rows[source] = frame.height
    return ImportSummary(rows, sorted(days), files, notes)


def _replace_partition(path: Path, rows: pl.DataFrame) -> None:
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    # A leading dot keeps the half-written file out of ingest's sight.
    staging = folder / f".{path.name}.tmp"
    rows.write_parquet(staging, compression="zstd", statistics=True)
    for entry in folder.iterdir():
        if entry not in (staging, path):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    os.replace(staging, path)
