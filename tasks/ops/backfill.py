"""Backfill planning as plain functions: which days, which of them train, and whether a day is already done."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import duckdb

from gnnrec.tasks.ops.db import sql_text
from gnnrec.tasks.data.ingest import landed_fingerprint
from gnnrec.tasks.ops.runs import inputs_digest

PublishMode = Literal["every", "last"]


def backfill_plan(start: date, end: date, publish: PublishMode) -> list[tuple[date, bool]]:
    """Every day from ``start`` to ``end`` in order, with whether it trains and publishes."""
    if end < start:
        raise ValueError(f"backfill end {end} is before its start {start}")
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return [(day, publish == "every" or day == end) for day in days]


def landed_inputs_digest(con: duckdb.DuckDBPyConnection, landing: Path, ds: date) -> str:
    """The inputs digest a run of ``ds`` would record, computed before ingesting it: what the warehouse holds for
    earlier days (a backfill ingests them first, in order) plus the files landed for ``ds`` now."""
    earlier = [
        (source, path, file_sha or "")
        for day, source, path, file_sha in con.execute(sql_text("ops/ingested_fingerprints"), {"ds": ds}).fetchall()
        if day < ds
    ]
    return inputs_digest([*earlier, *landed_fingerprint(landing, ds)])
