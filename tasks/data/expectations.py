"""Dataset-level contracts: one Great Expectations suite per clean table, over the partition just loaded and the
days before it.

This is the only module that imports ``great_expectations`` (lazily, in :func:`run_suites`: the import alone takes
seconds), so GX's API churn stays here. GX 1.x cannot validate polars frames and its DuckDB SQL datasource is
unreliable, so every measure is computed in DuckDB (``sql/expectations/*.sql``) and the suite runs on a one-row
pandas frame of those measures: cheap on a day of millions of rows, and each failed expectation still knows which
rows broke it (file and line), because a measure that counts rows comes from a query that selects them.

The data docs (GX's static site) are made for reading offline and over time: every suite runs under the run name
``<source>-<day>``; each expectation carries its meaning as GX's ``description``, so a page says what was checked
in words; the validation results are kept as JSON beside the pages (``<docs>/results``) so the index lists every
day ever checked; and the pages need nothing from the network (GX's own templates load Bootstrap, jQuery and
Font Awesome from CDNs, which leaves the index blank offline): the views below render GX's templates without those
links, with a small stylesheet of their own and the index's tables written out as HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import duckdb

from gnnrec.tasks.ops.db import sql_text

SAMPLE_ROWS = 5
RESULTS_DIR = "results"  # under the data docs folder: every day's validation results, which the index lists


def run_name(source: str, ds: date) -> str:
    """The GX run name of a source's suite on a day, as the data docs show it: ``interactions-2026-01-03``."""
    return f"{source}-{ds.isoformat()}"


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
            Expectation("suspected_fake_user_share", "interactions_suspected_fake_users",
                        "no new account of the day is flagged as fake by the defence (the measure is the flagged share)",
                        counts_rows=False, max_value=0.0),
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


def description(expectation: Expectation) -> str:
    """What an expectation checks, in words, as its data docs entry reads: the meaning and then the measure's bound."""
    meaning = expectation.meaning[0].upper() + expectation.meaning[1:]
    if expectation.counts_rows:
        bound = "the rows that break it are counted, and the count must be 0"
    else:
        bounds = [f"at least {expectation.min_value:g}" if expectation.min_value is not None else "",
                  f"at most {expectation.max_value:g}" if expectation.max_value is not None else ""]  # fmt: skip
        bound = f"the measure must be {' and '.join(b for b in bounds if b)}"
    return f"{meaning}: {bound} ({expectation.name})."


def _gx_expectation(gx, expectation: Expectation):
    """The GX expectation for one rule, over its column of the one-row frame of measures."""
    words = {"meta": {"name": expectation.name, "meaning": expectation.meaning}, "description": description(expectation)}
    if expectation.counts_rows:
        return gx.expectations.ExpectColumnMaxToBeBetween(column=expectation.name, max_value=0, **words)
    if expectation.min_value is not None:
        return gx.expectations.ExpectColumnMinToBeBetween(
            column=expectation.name, min_value=expectation.min_value, max_value=expectation.max_value, **words
        )
    return gx.expectations.ExpectColumnMaxToBeBetween(column=expectation.name, max_value=expectation.max_value, **words)


def _context(gx, docs_dir: Path | None):
    """An ephemeral GX context (nothing persists but the data docs), quiet and offline."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        offline = {"module_name": __name__, "class_name": "OfflinePageView"}
        sites["gnnrec"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "view": {"module_name": __name__, "class_name": "OfflineIndexPageView"},
            },
            "site_section_builders": {"expectations": {"view": offline}, "validations": {"view": offline}},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites=sites,
    )
    if docs_dir is not None:
        # The results of every day stay beside the pages, so the index (built from this store) lists them all.
        config.stores[config.validation_results_store_name]["store_backend"] = {
            "class_name": "TupleFilesystemStoreBackend", "base_directory": str((docs_dir / RESULTS_DIR).resolve()),
        }  # fmt: skip
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suites(con: duckdb.DuckDBPyConnection, ds: date, docs_dir: Path | None = None) -> list[ExpectationResult]:
    """Run every source's suite over ``ds``; with ``docs_dir``, write GX data docs (static HTML) there.

    A source without clean rows that day is skipped unless its suite checks empty days.
    """
    import great_expectations as gx
    import pandas as pd
    from great_expectations.core.run_identifier import RunIdentifier

    counts = dict(con.execute(sql_text("expectations/source_rows"), {"ds": ds}).fetchall())
    suites = [suite for source, suite in SUITES.items() if counts.get(source, 0) > 0 or suite.check_empty_day]
    if not suites:
        return []
    measured = {e.name: _measure(con, e, ds) for suite in suites for e in suite.expectations}
    by_name = {e.name: suite for suite in suites for e in suite.expectations}

    context = _context(gx, docs_dir)
    batch = context.data_sources.add_pandas("gnnrec").add_dataframe_asset("day_measures").add_batch_definition_whole_dataframe("one_row")
    # Expectation names are unique across suites, so one row of every measure serves every suite's batch.
    frame = pd.DataFrame({name: [m.value] for name, m in measured.items()})
    suite_results = {}
    for suite in SUITES.values():
        # Every suite is known to the context, so the index links each suite's page even on a day it did not run.
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
        for expectation in suite.expectations:
            gx_suite.add_expectation(_gx_expectation(gx, expectation))
        if suite not in suites:
            continue
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite.name} {ds.isoformat()}", data=batch, suite=gx_suite)
        )
        # One checkpoint run per suite: its run name is what the data docs show for the run, the source and the day.
        name = run_name(suite.source, ds)
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(name=name, validation_definitions=[validation], result_format="SUMMARY")
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=name))
        suite_results.update(outcome.run_results)
    if docs_dir is not None:
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        pages = [*(ExpectationSuiteIdentifier(name=suite.name) for suite in SUITES.values()), *suite_results]
        context.build_data_docs(resource_identifiers=pages)

    results: list[ExpectationResult] = []
    for suite_result in suite_results.values():
        for result in suite_result.results:
            name = result.expectation_config.meta["name"]
            observed = result.result.get("observed_value")
            results.append(ExpectationResult(
                ds, by_name[name].source, by_name[name].name, name, bool(result.success),
                f"{observed:g}" if observed is not None else "", () if result.success else measured[name].sample,
            ))  # fmt: skip
    order = {name: i for i, name in enumerate(measured)}
    return sorted(results, key=lambda r: order[r.expectation])


# ---------------------------------------------------------------------------------------------------------------
# Offline data docs: GX's page templates, read without their CDN links, with a stylesheet of our own
# ---------------------------------------------------------------------------------------------------------------

# A CDN stylesheet or script tag in GX's templates, and a background image in GX's stylesheet.
_REMOTE_ASSET = re.compile(
    r'<link\b[^>]*\bhref="https?://[^"]*"[^>]*>|<script\b[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>'
    r"|url\('https?://[^']*'\)"
)
# The navigation bar's line that points the logo at GX's web bucket: the package's own copy (in ``static/``) instead.
_REMOTE_LOGO = re.compile(r'\{%-?\s*set static_images_dir = "https?://[^"]*"\s*-?%\}')
_LOCAL_LOGO = '{% if static_images_dir is not defined %}{% set static_images_dir = "./static/images/" %}{% endif %}'

# Replaces GX's bootstrap_table.j2, which hands its rows to the bootstrap-table script: the rows as plain HTML, newest
# run first, each row's run name (or first cell) a link to its page.
_STATIC_TABLE = """{% include 'content_block_header.j2' %}
{% set rows = content_block["table_data"] | render_bootstrap_table_data %}
{% if rows and "_run_time_sort" in rows[0] %}{% set rows = rows | sort(attribute="_run_time_sort", reverse=True) %}{% endif %}
<table id="{{ content_block_id }}-body-table" class="table table-sm gnnrec-static-table">
  <thead><tr>{% for column in content_block["table_columns"] %}<th>{{ column["title"] }}</th>{% endfor %}</tr></thead>
  <tbody>
  {% for row in rows %}
    {% set fields = content_block["table_columns"] | map(attribute="field") | list %}
    {% set linked = "run_name" if "run_name" in fields else fields[0] %}
    <tr>{% for column in content_block["table_columns"] %}<td>
      {%- if column["field"] == linked and row.get("_table_row_link_path") -%}
        <a href="{{ row["_table_row_link_path"] }}">{{ row.get(column["field"], "") | safe }}</a>
      {%- else -%}{{ row.get(column["field"], "") | safe }}{%- endif -%}
    </td>{% endfor %}</tr>
  {% endfor %}
  </tbody>
</table>
"""

# The few Bootstrap 4 rules GX's pages rely on (grid, tables, alerts, tabs shown one after the other), and the Font
# Awesome icons they use as plain characters. GX includes ``data_docs_custom_styles.css`` in every page by itself.
_OFFLINE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 14px; color: #212529;
  margin: 0; line-height: 1.5; background: #fff; }
a { color: #0b63c5; text-decoration: none; } a:hover { text-decoration: underline; }
.container-fluid { width: 100%; box-sizing: border-box; padding: 0 12px; }
.row { display: flex; flex-wrap: wrap; margin: 0 -12px; }
.row > * { box-sizing: border-box; padding: 0 12px; }
.col-12, .col-xs-12, .col-sm-12 { flex: 0 0 100%; max-width: 100%; }
@media (min-width: 768px) {
  .col-md-2 { flex: 0 0 16.66%; max-width: 16.66%; } .col-md-4 { flex: 0 0 33.33%; max-width: 33.33%; }
  .col-md-6 { flex: 0 0 50%; max-width: 50%; } .col-md-8 { flex: 0 0 66.66%; max-width: 66.66%; }
  .col-md-10 { flex: 0 0 83.33%; max-width: 83.33%; } .col-md-12 { flex: 0 0 100%; max-width: 100%; } }
.navbar { display: flex; align-items: center; padding: 8px 24px; background: #f8f9fa; }
.sticky-top { position: sticky; top: 0; z-index: 10; } .border-bottom { border-bottom: 1px solid #dee2e6; }
.d-flex { display: flex; } .align-items-center { align-items: center; } .mr-auto { margin-right: auto; }
.d-none { display: none; } .d-md-block, .d-sm-block { display: block; } .float-left { float: left; }
.breadcrumb.d-md-inline-flex { display: inline-flex; list-style: none; gap: 6px; margin-left: 16px; padding: 0; }
.breadcrumb-item + .breadcrumb-item::before { content: "/ "; color: #6c757d; }
.text-center { text-align: center; } .text-right { text-align: right; }
.pt-4 { padding-top: 24px; } .pb-4 { padding-bottom: 24px; } .pl-5 { padding-left: 40px; } .pr-5 { padding-right: 40px; }
.mb-4 { margin-bottom: 24px; } .mb-2 { margin-bottom: 8px; } .mt-2 { margin-top: 8px; } .m-0 { margin: 0; }
.alert { padding: 10px 16px; margin-bottom: 12px; border: 1px solid transparent; border-radius: 4px; }
.alert-secondary { background: #e2e3e5; border-color: #d6d8db; }
.card { border: 1px solid #dee2e6; border-radius: 4px; margin-bottom: 16px; background: #fff; }
.card-header { padding: 8px 16px; background: #f7f7f9; border-bottom: 1px solid #dee2e6; }
.card-body { padding: 12px 16px; }
.nav { display: flex; list-style: none; padding: 0; margin: 0 0 8px; gap: 16px; }
.nav-pills { flex-direction: column; gap: 2px; }
.nav-tabs { border-bottom: 1px solid #dee2e6; } .nav-link { display: block; padding: 6px 2px; }
.tab-pane { display: block; margin-bottom: 24px; }
.table { width: 100%; border-collapse: collapse; margin-bottom: 16px; }
.table th, .table td, table.table-sm th, table.table-sm td { padding: 5px 8px; border-top: 1px solid #dee2e6;
  text-align: left; vertical-align: top; }
.table thead th { border-bottom: 2px solid #dee2e6; background: #f8f9fa; }
.gnnrec-static-table tbody tr:hover { background: #f1f5fb; }
.text-danger { color: #c62828; } .text-success { color: #2e7d32; } .text-muted { color: #6c757d; }
.badge { display: inline-block; padding: 2px 6px; border-radius: 4px; font-size: 85%; background: #e9ecef; }
.btn { display: none; } /* the filter buttons and collapse toggles need scripts; collapsed details stay open */
.fas, .far, .fa { font-style: normal; font-weight: bold; }
.fa-check-circle::before, .fa-check::before { content: "\\2714"; }
.fa-times::before, .fa-times-circle::before { content: "\\2718"; }
.fa-exclamation-triangle::before { content: "\\26A0"; }
.fa-info-circle::before, .fa-question-circle::before { content: "\\24D8"; }
"""


def _offline_loader(gx_loader):
    """A template loader that reads GX's templates without their remote assets and with the overrides above."""
    from jinja2 import BaseLoader, ChoiceLoader, DictLoader

    class WithoutRemoteAssets(BaseLoader):
        def get_source(self, environment, template):
            source, filename, uptodate = gx_loader.get_source(environment, template)
            return _REMOTE_LOGO.sub(_LOCAL_LOGO, _REMOTE_ASSET.sub("", source)), filename, uptodate

    # GX's footer is a newsletter form.
    ours = DictLoader(
        {"bootstrap_table.j2": _STATIC_TABLE, "data_docs_custom_styles.css": _OFFLINE_CSS, "cloud-footer.j2": ""}
    )
    return ChoiceLoader([ours, WithoutRemoteAssets()])


@cache
def _offline_views() -> dict[str, type]:
    from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

    def offline(view: type) -> type:
        class Offline(view):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self.env.loader = _offline_loader(self.env.loader)

        Offline.__name__ = Offline.__qualname__ = f"Offline{view.__name__.removeprefix('DefaultJinja')}"
        return Offline

    return {"OfflinePageView": offline(DefaultJinjaPageView), "OfflineIndexPageView": offline(DefaultJinjaIndexPageView)}


def __getattr__(name: str):
    # GX's site builder finds its view classes by module and class name; they subclass GX's views, so they are made
    # on that first look-up rather than at import (importing GX takes seconds).
    if name in ("OfflinePageView", "OfflineIndexPageView"):
        return _offline_views()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
