"""``ciao``: Ciao (Tang et al.) as released with GraphRec, two MATLAB v5 files read with ``scipy.io.loadmat``.

``rating_with_timestamp.mat`` holds ``rating``, an N x 6 matrix ``[user, item, category, rating, helpfulness,
unix_ts]``; ``trustnetwork.mat`` holds ``trustnetwork``, M x 2 ``[truster, trustee]``. Ratings are 0..5 (34 zeros).
Category and helpfulness are not landed.

By default the ratings land by the UTC day of their timestamp and the trust edges, which carry no time, on the first
of those days. ``--split random80`` / ``random60`` follow GraphRec: keep the ratings of users in the trust network
(either end of an edge), shuffle them with ``--seed`` and put 80% (60%) on ``D - 1`` with the trust edges and the
rest on ``D``. Every rating keeps its real timestamp as ``ts``. A "row" in an error is the matrix row, 1-based.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from gnnrec.tasks.data.importers.base import (
    DAY_COLUMN,
    DEFAULT_SEED,
    DatasetFormatError,
    ImportRequest,
    dataset_file,
    random_parts,
    refuse_options,
    split_days,
    utc_day,
    utc_timestamp,
)

NAME = "ciao"
SPLITS = ("random80", "random60")
SHARES = {"random80": (0.8, 0.2), "random60": (0.6, 0.4)}  # (train, test)
DEFAULT_DAY = date(2011, 4, 13)  # the last rating is on 2011-04-12 (UTC)
EVENT = "rate"
RATING_COLUMNS = ("user", "item", "category", "rating", "helpfulness", "timestamp")
TRUST_COLUMNS = ("truster", "trustee")


def build(folder: Path, request: ImportRequest) -> dict[str, pl.DataFrame]:
    rating_path = dataset_file(folder, "rating_with_timestamp.mat", NAME)
    trust_path = dataset_file(folder, "trustnetwork.mat", NAME)
    ratings = _matrix(rating_path, "rating", RATING_COLUMNS)
    trust = _matrix(trust_path, "trustnetwork", TRUST_COLUMNS)

    if request.split is None:
        refuse_options(request, "without --split the days come from the timestamps", day=True, seed=True)
        ratings = ratings.with_columns(utc_day(pl.col("timestamp")).alias(DAY_COLUMN))
        trust_day = ratings[DAY_COLUMN].min()
    else:
        train_day, test_day = split_days(request.day or DEFAULT_DAY, 2)
        in_network = np.union1d(trust["truster"].to_numpy(), trust["trustee"].to_numpy())
        ratings = ratings.filter(pl.col("user").is_in(pl.Series(in_network).implode()))
        seed = DEFAULT_SEED if request.seed is None else request.seed
        labels = random_parts(ratings.height, SHARES[request.split], seed)
        days = pl.Series(DAY_COLUMN, [train_day, test_day], dtype=pl.Date).gather(labels)
        ratings = ratings.with_columns(days)
        trust_day = train_day

    interactions = ratings.select(
        pl.col("user").cast(pl.String).alias("user_id"),
        pl.col("item").cast(pl.String).alias("item_id"),
        pl.lit(EVENT).alias("event"),
        pl.col("rating").cast(pl.Float64),
        utc_timestamp(pl.col("timestamp")).alias("ts"),
        DAY_COLUMN,
    )
    social = trust.select(
        pl.col("truster").cast(pl.String).alias("src_user_id"),
        pl.col("trustee").cast(pl.String).alias("dst_user_id"),
        pl.lit(trust_day, pl.Date).alias(DAY_COLUMN),
    )
    return {"interactions": interactions, "social": social}


def _matrix(path: Path, variable: str, columns: tuple[str, ...]) -> pl.DataFrame:
    """The integer matrix ``variable`` of a .mat file as Int64 columns ``columns``."""
    from scipy.io import loadmat

    try:
        contents = loadmat(path, variable_names=[variable])
    except Exception as error:  # noqa: BLE001 - scipy raises many types for a damaged file; all mean the same here
        raise DatasetFormatError(path, None, f"cannot read it as a MATLAB file: {type(error).__name__}: {error}") from None
    matrix = contents.get(variable)
    if matrix is None:
        raise DatasetFormatError(path, None, f"expected a variable {variable!r}")
    if matrix.ndim != 2 or matrix.shape[1] != len(columns) or not np.issubdtype(matrix.dtype, np.number):
        raise DatasetFormatError(
            path, None, f"expected {variable!r} to be an N x {len(columns)} numeric matrix "
            f"[{', '.join(columns)}], found {matrix.dtype} {' x '.join(map(str, matrix.shape))}",
        )  # fmt: skip
    # Rows are the line numbers of a matrix: the first row that is not whole non-negative numbers is named.
    if not np.issubdtype(matrix.dtype, np.integer) or (matrix < 0).any():
        whole = np.isfinite(matrix) & (matrix >= 0) & (np.mod(matrix, 1) == 0)
        if not whole.all():
            row, column = np.argwhere(~whole)[0]
            value = matrix[row, column].item()
            raise DatasetFormatError(
                path, int(row) + 1, f"{columns[column]} must be a non-negative integer, found {value!r}", unit="row"
            )
    return pl.DataFrame(matrix.astype(np.int64), schema=list(columns), orient="row")
