"""What an attack did and what the defence caught, read back from the warehouse: the targets' hit rate in real
users' published lists, and the detector's precision and recall against the fake accounts an attack wrote."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from gnnrec.tasks.ops.db import sql_text


def target_hit_rate(con: duckdb.DuckDBPyConnection, ds: date, model: str, targets: list[str], fakes: list[str], k: int) -> float:
    """The share of real users with a published list on ``ds`` (fake accounts left out) who had not taken a target
    up to ``ds`` and find one in their top ``k``."""
    (rate,) = con.execute(
        sql_text("security/target_hit_rate"), {"ds": ds, "model": model, "targets": targets, "fakes": fakes, "k": k}
    ).fetchone()
    return float(rate or 0.0)


@dataclass(frozen=True)
class Detection:
    flagged: int
    true_positives: int
    fakes: int
    genuine_scored: int  # genuine new accounts the detector scored that day

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged if self.flagged else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.fakes if self.fakes else 1.0


def detection(con: duckdb.DuckDBPyConnection, ds: date, fakes: list[str]) -> Detection:
    """The defence's accounts flagged on ``ds`` against the fake accounts the attack wrote."""
    flagged, hits, genuine = con.execute(sql_text("security/detection"), {"ds": ds, "fakes": fakes}).fetchone()
    return Detection(flagged, hits, len(fakes), genuine)
