"""The contract gate of a day: run the dataset expectations, record them, and hold the day's row and dataset
outcomes against the policy. What breaks it is a :class:`Breach`; what the operator reads is built here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from gnnrec.tasks.ops.db import ARROW_LEVEL, partition_sql, sql_text, transaction
from gnnrec.tasks.data.expectations import ExpectationResult, run_suites
from gnnrec.tasks.ops.failpoints import failpoint
from gnnrec.tasks.data.policy import ContractPolicy, DataContractError
from gnnrec.tasks.data.progress import mark_day
from gnnrec.tasks.data.validate import SourceValidation
from gnnrec.tasks.security.detector import USER_RULE, Screening, screen_day

log = logging.getLogger(__name__)

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class FailedFile:
    source: str
    path: str
    error: str


@dataclass(frozen=True)
class Breach:
    """One reason the day may not go on: the source, the rule (or expectation), what was seen, and a sample."""

    source: str
    rule: str
    reason: str
    sample: tuple[str, ...]

    def describe(self) -> str:
        sample = "".join(f"\n      {row}" for row in self.sample)
        return f"  {self.source}: {self.rule}: {self.reason}" + (f"; sample:{sample}" if sample else "")


@dataclass(frozen=True)
class DayContracts:
    """Everything the contracts found on one day."""

    ds: date
    validation: list[SourceValidation]
    failed_files: list[FailedFile]
    expectations: list[ExpectationResult]
    critical: frozenset[tuple[str, str]]  # (source, expectation) pairs the policy calls critical
    breaches: list[Breach]
    data_docs: Path | None  # the data docs' index page, when they were written
    screening: Screening | None = None  # what the defence against fake accounts flagged

    def error_message(self) -> str:
        lines = [f"data contract broken on {self.ds.isoformat()}; nothing was trained or published:"]
        lines += [b.describe() for b in self.breaches]
        if self.data_docs is not None:
            lines.append(f"  data docs: {self.data_docs}")
        return "\n".join(lines)

    def raise_if_broken(self) -> None:
        if self.breaches:
            raise DataContractError(self.error_message())


def _quarantine_sample(con: duckdb.DuckDBPyConnection, source: str, ds: date) -> tuple[str, ...]:
    rows = con.execute(partition_sql("partition/quarantine_sample", f"quarantine.{source}"), {"ds": ds, "rows": SAMPLE_ROWS})
    return tuple(
        f"{file}:{line} {column or '(line)'} {rule} {value!r}" for file, line, column, rule, value in rows.fetchall()
    )


def find_breaches(
    validation: list[SourceValidation],
    failed_files: list[FailedFile],
    expectations: list[ExpectationResult],
    policy: ContractPolicy,
    quarantine_samples: dict[str, tuple[str, ...]],
) -> list[Breach]:
    """Where the day's outcomes break ``policy``: a source over its rejection budget, an unreadable file where the
    policy forbids one, a failed critical expectation."""
    breaches = []
    for v in validation:
        budget = policy.of(v.source).rejection_budget
        if v.rows_read and v.rows_quarantined / v.rows_read > budget:
            rules = ", ".join(f"{rule} ({n})" for rule, n in sorted(v.rule_counts.items(), key=lambda kv: (-kv[1], kv[0])))
            breaches.append(Breach(
                v.source, rules,
                f"{v.rows_quarantined:,} of {v.rows_read:,} rows quarantined "
                f"({v.rows_quarantined / v.rows_read:.1%}), over the rejection budget of {budget:.1%}",
                quarantine_samples.get(v.source, ()),
            ))  # fmt: skip
    for f in failed_files:
        if policy.of(f.source).fail_on_unreadable_file:
            breaches.append(Breach(f.source, "file_readable", f"{f.path} cannot be read: {f.error}", ()))
    for r in expectations:
        if not r.success and r.expectation in policy.of(r.source).critical:
            breaches.append(Breach(r.source, r.expectation, f"critical expectation failed, observed {r.observed_value}", r.sample))
    return breaches


def defence_breaches(screening: Screening) -> list[Breach]:
    """The day is refused when the defence's policy says ``stop`` and it flagged anything."""
    if screening.action != "stop" or not (screening.flagged_users or screening.flagged_entities):
        return []
    flagged = [f"account {u}" for u in screening.flagged_users] + [f"entity {e}" for e in screening.flagged_entities]
    reason = (f"{len(screening.flagged_users)} of {screening.scored_users} new accounts and "
              f"{len(screening.flagged_entities)} entities flagged; the defence's policy stops the run")  # fmt: skip
    return [Breach("interactions", USER_RULE, reason, tuple(flagged[:SAMPLE_ROWS]))]


def record_expectations(
    con: duckdb.DuckDBPyConnection, run_id: str, ds: date, results: list[ExpectationResult], critical: frozenset[tuple[str, str]]
) -> None:
    """Replace ``ops.validation_results`` of (``run_id``, ``ds``) with ``results``; call inside a transaction."""
    rows = pl.DataFrame(
        [(run_id, ds, r.source, r.suite, r.expectation, r.success, r.observed_value, (r.source, r.expectation) in critical)
         for r in results],
        schema={"run_id": pl.String, "ds": pl.Date, "source": pl.String, "suite": pl.String, "expectation": pl.String,
                "success": pl.Boolean, "observed_value": pl.String, "critical": pl.Boolean},
        orient="row",
    )  # fmt: skip
    con.execute(sql_text("ops/delete_validation_results"), {"run_id": run_id, "ds": ds})
    if rows.height:
        con.register("staged_results", rows.to_arrow(compat_level=ARROW_LEVEL))
        try:
            con.execute(sql_text("ops/insert_validation_results"))
        finally:
            con.unregister("staged_results")


ROW_SUITE = "row_contracts"


def budget_results(ds: date, validation: list[SourceValidation], policy: ContractPolicy) -> list[ExpectationResult]:
    """Each source's rejection budget as a result next to the expectations (always critical), so that
    ``ops.validation_results`` alone tells which days a run refused."""
    return [
        ExpectationResult(
            ds, v.source, ROW_SUITE, "rejection_budget", v.rows_quarantined / v.rows_read <= policy.of(v.source).rejection_budget,
            f"{v.rows_quarantined / v.rows_read:.4g}", (),
        )
        for v in validation
        if v.rows_read
    ]


def check_contracts(
    con: duckdb.DuckDBPyConnection, ds: date, run_id: str, policy: ContractPolicy, validation: list[SourceValidation],
    docs_dir: Path | None = None,
) -> DayContracts:
    """Run the day's expectations (writing data docs to ``docs_dir`` if given), record them for ``run_id``, and
    judge the day against ``policy``. Raises nothing: the caller decides (:meth:`DayContracts.raise_if_broken`)."""
    # The screening, the expectations (which see the day as screened), their results and the verdict commit
    # together: a day is never decided without its evidence, nor the reverse.
    with transaction(con):
        screening = screen_day(con, ds, policy.defence)
        results = run_suites(con, ds, docs_dir)
        critical = frozenset(
            (r.source, r.expectation) for r in results if r.expectation in policy.of(r.source).critical
        )
        failed = [FailedFile(*row) for row in con.execute(sql_text("ops/failed_files"), {"ds": ds}).fetchall()]
        samples = {v.source: _quarantine_sample(con, v.source, ds) for v in validation if v.rows_quarantined}
        breaches = find_breaches(validation, failed, results, policy, samples) + defence_breaches(screening)
        record_expectations(
            con, run_id, ds, results + budget_results(ds, validation, policy),
            critical | {(v.source, "rejection_budget") for v in validation},
        )
        mark_day(con, ds, "refused" if breaches else "accepted", run_id)
        failpoint("contracts-before-commit")
    for r in results:
        if not r.success:
            log.warning("%s %s: expectation %s failed, observed %s", r.source, ds, r.expectation, r.observed_value)
    docs = docs_dir / "index.html" if docs_dir is not None and (docs_dir / "index.html").is_file() else None
    return DayContracts(ds, validation, failed, results, critical, breaches, docs, screening)


def contract_report(day: DayContracts) -> list[dict[str, str | int]]:
    """The operator's table of a day: every quarantine rule with its row count, every unreadable file, and every
    failed expectation (with whether it stopped the run). Passing expectations are in ``ops.validation_results``."""
    rows: list[dict[str, str | int]] = []
    for v in day.validation:
        for rule, count in sorted(v.rule_counts.items()):
            rows.append({"day": day.ds.isoformat(), "source": v.source, "check": "row rule", "name": rule,
                         "observed": f"{count} rows", "outcome": "quarantined"})  # fmt: skip
    if (screening := day.screening) is not None and (screening.flagged_users or screening.flagged_entities):
        moved = ", ".join(f"{n} {source} rows" for source, n in screening.quarantined_rows.items())
        rows.append({"day": day.ds.isoformat(), "source": "interactions", "check": "defence", "name": USER_RULE,
                     "observed": f"{len(screening.flagged_users)} of {screening.scored_users} new accounts, "
                                 f"{len(screening.flagged_entities)} entities{'; ' + moved if moved else ''}",
                     "outcome": "quarantined" if screening.quarantined_rows else f"flagged ({screening.action})"})  # fmt: skip
    for f in day.failed_files:
        rows.append({"day": day.ds.isoformat(), "source": f.source, "check": "file", "name": f.path,
                     "observed": f.error, "outcome": "not read"})  # fmt: skip
    for r in day.expectations:
        if not r.success:
            critical = (r.source, r.expectation) in day.critical
            rows.append({"day": day.ds.isoformat(), "source": r.source, "check": "expectation", "name": r.expectation,
                         "observed": r.observed_value, "outcome": "failed (critical)" if critical else "failed (warning)"})  # fmt: skip
    return rows


def contract_markdown(day: DayContracts, source: str) -> str:
    """One source's data contracts on one day, as an operator reads them in the Prefect UI: its row counts, then
    every finding of :func:`contract_report` as a table, or a line saying all rules were met, so a clean day
    reads as clean rather than as an empty table. Everything is in the text (a ``file://`` link is blocked by
    browsers), and the data docs' path is given for those on the machine."""
    rows = [r for r in contract_report(day) if r["source"] == source]
    expectations = [r for r in day.expectations if r.source == source]
    validation = next((v for v in day.validation if v.source == source), None)
    lines = [f"## {source}, {day.ds.isoformat()}", ""]
    if validation is not None:
        lines.append(
            f"{validation.rows_read:,} rows read, {validation.rows_loaded:,} loaded, "
            f"{validation.rows_quarantined:,} quarantined."
        )
    failed = sum(not r.success for r in expectations)
    lines.append(f"{len(expectations) - failed} of {len(expectations)} expectations met.")
    lines.append("")
    if rows:
        lines += ["| check | name | observed | outcome |", "|---|---|---|---|"]
        lines += [f"| {r['check']} | {r['name']} | {r['observed']} | {r['outcome']} |" for r in rows]
    else:
        lines.append("**All rules met.**")
    breaches = [b for b in day.breaches if b.source == source]
    if breaches:
        lines += ["", "**The run stopped before training:**", "```", *(b.describe() for b in breaches), "```"]
    if day.data_docs is not None:
        lines += ["", f"Great Expectations data docs on the run's machine: `{day.data_docs}`"]
    return "\n".join(lines)
