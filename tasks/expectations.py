"""Dataset-level contracts: one Great Expectations suite per clean table, over the partition just loaded and the
days before it.

This is the only module that imports ``great_expectations`` (lazily, in :func:`run_suites`: the import alone takes
seconds), so GX's API churn stays here. GX 1.x cannot validate polars frames and its DuckDB SQL datasource is
unreliable, so every measure is computed in DuckDB (``sql/expectations/*.sql``) and the suite runs on a one-row
pandas frame of those measures: cheap on a day of millions of rows, and each failed expectation still knows which
rows broke it (file and line), because a measure that counts rows comes from a query that selects them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from tasks.db import sql_text

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Expectation:
    """One dataset-level rule. ``query`` (``sql/expectations/<query>.sql``) either selects the offending rows
    (``source_file, source_line, detail``; the measure is their count, expected 0) or, when ``counts_rows`` is
    False, returns one ``measure`` that must lie within ``[min_value, max_value]``."""

    name: str
    query: str
    meaning: str
    counts_rows: bool = True
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class Suite:
    source: str
    expectations: tuple[Expectation, ...]
    # A source that lands only on some days has nothing to check on the others; interactions always do (a day
    # without any is the volume expectation's business).
    check_empty_day: bool = False

    @property
    def name(self) -> str:
        return f"{self.source}_day"


SUITES: dict[str, Suite] = {
    suite.source: suite
    for suite in (
        Suite("interactions", (
            Expectation("volume_vs_trailing_days", "interactions_volume_ratio",
                        "the day's events are at least 10% of the mean of the 7 days before",
                        counts_rows=False, min_value=0.1),
            Expectation("no_duplicate_events", "interactions_duplicate_events",
                        "no exact duplicate events (same user, item, event, time and rating)"),
            Expectation("ratings_agree_per_event", "interactions_conflicting_ratings",
                        "an event (same user, item, event and time) is not landed with two different ratings"),
            Expectation("rating_matches_event_type", "interactions_rating_event_mismatch",
                        "`rate` events carry a rating and other events none"),
            Expectation("timestamps_inside_the_day", "interactions_outside_day",
                        "every event's time (UTC) falls on the partition's day"),
            Expectation("new_user_share", "interactions_new_user_share",
                        "at most 80% of the day's users are new", counts_rows=False, max_value=0.8),
            Expectation("new_item_share", "interactions_new_item_share",
                        "at most 80% of the day's items are new", counts_rows=False, max_value=0.8),
        ), check_empty_day=True),
        Suite("social", (
            Expectation("edges_between_known_users", "social_unknown_users",
                        "both ends of an edge are users with an interaction up to the day"),
            Expectation("no_self_loops", "social_self_loops", "no edge from a user to the same user"),
        )),
        Suite("kg", (
            Expectation("relations_in_known_vocabulary", "kg_unknown_relations",
                        "every relation occurred on an earlier day (the first day with triples sets the vocabulary)"),
        )),
        Suite("item_entities", (
            Expectation("links_to_known_items", "item_entities_unknown_items",
                        "every linked item has an interaction up to the day"),
            Expectation("no_dangling_entities", "item_entities_dangling_entities",
                        "every linked entity is in a knowledge-graph triple up to the day"),
        )),
    )
}  # fmt: skip


@dataclass(frozen=True)
class ExpectationResult:
    ds: date
    source: str
    suite: str
    expectation: str
    success: bool
    observed_value: str
    sample: tuple[str, ...]  # up to SAMPLE_ROWS offending rows as ``file:line detail`` (row-counting ones only)


@dataclass(frozen=True)
class _Measured:
    expectation: Expectation
    value: float
    sample: tuple[str, ...]


def _measure(con: duckdb.DuckDBPyConnection, expectation: Expectation, ds: date) -> _Measured:
    rows = con.sql(sql_text(f"expectations/{expectation.query}"), params={"ds": ds})
    if not expectation.counts_rows:
        (value,) = rows.fetchall()[0]
        return _Measured(expectation, round(float(value), 4), ())
    (count,) = rows.aggregate("count(*)").fetchall()[0]
    # A relation runs its query again on every call, so the sample is drawn only when there is something to show.
    sample = tuple(f"{file}:{line} {detail}" for file, line, detail in rows.limit(SAMPLE_ROWS).fetchall()) if count else ()
    return _Measured(expectation, float(count), sample)


def _gx_expectation(gx, expectation: Expectation):
    """The GX expectation for one rule, over its column of the one-row frame of measures."""
    meta = {"name": expectation.name, "meaning": expectation.meaning}
    if expectation.counts_rows:
        return gx.expectations.ExpectColumnMaxToBeBetween(column=expectation.name, max_value=0, meta=meta)
    if expectation.min_value is not None:
        return gx.expectations.ExpectColumnMinToBeBetween(
            column=expectation.name, min_value=expectation.min_value, max_value=expectation.max_value, meta=meta
        )
    return gx.expectations.ExpectColumnMaxToBeBetween(column=expectation.name, max_value=expectation.max_value, meta=meta)


def _context(gx, docs_dir: Path | None):
    """An ephemeral GX context (nothing persists but the data docs), quiet and offline."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites["gnnrec"] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites=sites,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suites(con: duckdb.DuckDBPyConnection, ds: date, docs_dir: Path | None = None) -> list[ExpectationResult]:
    """Run every source's suite over ``ds``; with ``docs_dir``, write GX data docs (static HTML) there.

    A source without clean rows that day is skipped unless its suite checks empty days.
    """
    import great_expectations as gx
    import pandas as pd

    counts = dict(con.execute(sql_text("expectations/source_rows"), {"ds": ds}).fetchall())
    suites = [suite for source, suite in SUITES.items() if counts.get(source, 0) > 0 or suite.check_empty_day]
    if not suites:
        return []
    measured = {e.name: _measure(con, e, ds) for suite in suites for e in suite.expectations}
    by_name = {e.name: suite for suite in suites for e in suite.expectations}

    context = _context(gx, docs_dir)
    batch = context.data_sources.add_pandas("gnnrec").add_dataframe_asset("day_measures").add_batch_definition_whole_dataframe("one_row")
    validations = []
    for suite in suites:
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
        for expectation in suite.expectations:
            gx_suite.add_expectation(_gx_expectation(gx, expectation))
        validations.append(context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite.name} {ds.isoformat()}", data=batch, suite=gx_suite)
        ))  # fmt: skip
    # Expectation names are unique across suites, so one row of every measure serves every suite's batch; the
    # checkpoint is what hands the results to the data docs site.
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=f"gnnrec {ds.isoformat()}", validation_definitions=validations, result_format="SUMMARY",
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_dir is not None else [],
    ))  # fmt: skip
    frame = pd.DataFrame({name: [m.value] for name, m in measured.items()})
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})

    results: list[ExpectationResult] = []
    for suite_result in outcome.run_results.values():
        for result in suite_result.results:
            name = result.expectation_config.meta["name"]
            observed = result.result.get("observed_value")
            results.append(ExpectationResult(
                ds, by_name[name].source, by_name[name].name, name, bool(result.success),
                f"{observed:g}" if observed is not None else "", () if result.success else measured[name].sample,
            ))  # fmt: skip
    order = {name: i for i, name in enumerate(measured)}
    return sorted(results, key=lambda r: order[r.expectation])
