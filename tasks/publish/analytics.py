"""The analysts' store: Parquet files plus a small DuckDB file of views over them, published next to the warehouse.

The store is a folder, ``<warehouse>.analytics/`` beside the warehouse (``data/gnnrec.duckdb`` ->
``data/gnnrec.analytics/``), holding ``views.duckdb`` and the Parquet files. The views name their files by paths
relative to that folder, so the folder works wherever it is copied or mounted: a reader resolves them by opening it
with :func:`open_store` (which sets DuckDB's ``file_search_path`` to the folder), from inside the folder, or after
``SET file_search_path``. The views file is written in a storage format the DuckDB 1.5 command line still reads
(:data:`STORAGE_VERSION`), and every view and column carries a comment (:mod:`tasks.publish.data_dictionary`).

DuckDB lets one process hold a file it writes, and then no other process may open it, not even read-only. So
analysts never open the warehouse. After each publication the pipeline:

1. writes each published ``(ds, model)`` of ``recs.topk`` that has no file yet to
   ``<store>/topk/ds=<ds>/model=<model>/<run_id>.parquet``, and snapshots ``ops.runs``, ``ops.metrics``,
   ``recs.publications`` and the item catalog to new files (each written to a temporary name, then renamed);
2. builds a new views-only DuckDB file under a temporary name and ``os.replace``s it over the published one.

A reader's session keeps the views file it opened (the old inode), and those views name exact files, never a
glob. A (ds, model) is therefore one complete file of one run, whatever the pipeline does meanwhile. Superseded
files are deleted only once they are neither the current nor the previous generation and older than
``grace``, so a session opened before the last publication keeps working.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from gnnrec.tasks.publish.data_dictionary import comment_statements
from gnnrec.tasks.ops.db import fetch_arrow, sql_text
from gnnrec.tasks.ops.failpoints import failpoint

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
VIEWS_FILE = "views.duckdb"
# The storage format of the views file: v1.5.0 (storage version 68) is the newest that the DuckDB 1.5 command line
# (the ``duckdb-cli`` package, the newest CLI on PyPI) reads; DuckDB 2.0's own format (69) it refuses.
STORAGE_VERSION = "v1.5.0"

# Each view of the store and the export that feeds it; the topk view is fed by its partitions instead.
SNAPSHOTS = {
    "runs": ("ops/export_runs", "analytics/runs_view"),
    "metrics": ("ops/export_metrics", "analytics/metrics_view"),
    "publications": ("recs/export_publications", "analytics/publications_view"),
    "items": ("graph/export_items", "analytics/items_view"),
}
# The exports that show the registry as it will be once the run being completed is (see ``publish_store``).
EXPORT_PARAMETERS = {"runs": ("completing", "now"), "publications": ("completing",)}


@dataclass(frozen=True)
class StoreSummary:
    path: Path
    partitions: int
    exported: int
    pruned: int


def default_store(db: Path) -> Path:
    """The views file of the store that belongs to the warehouse ``db``:
    ``data/gnnrec.duckdb`` -> ``data/gnnrec.analytics/views.duckdb``."""
    return db.with_name(f"{db.stem}.analytics") / VIEWS_FILE


def views_file(store: Path) -> Path:
    """The views file of a store given as its folder or as the file itself."""
    return store / VIEWS_FILE if store.is_dir() else store


def store_dir(analytics: Path) -> Path:
    """Where the Parquet files behind the views file ``analytics`` live: the folder that holds it
    (``data/gnnrec.analytics/views.duckdb`` -> ``data/gnnrec.analytics/``); a views file with another name keeps
    them in a folder of its own name beside it (``data/analytics.duckdb`` -> ``data/analytics/``)."""
    return analytics.parent if analytics.name == VIEWS_FILE else analytics.with_name(analytics.stem)


def open_store(store: Path) -> duckdb.DuckDBPyConnection:
    """A read-only session on the store (its folder or its views file), its relative paths resolved against the
    folder that holds the views file, wherever that folder is now."""
    views = views_file(store)
    if not views.is_file():
        raise FileNotFoundError(f"no analysts' store at {store}")
    return duckdb.connect(str(views), read_only=True, config={"file_search_path": str(views.parent.resolve())})


def partition_dir(store: Path, ds: date, model: str) -> Path:
    return store / "topk" / f"ds={ds.isoformat()}" / f"model={model}"


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write-then-rename, so a file under its final name is always complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)


def _file_list_literal(files: Iterable[Path], base: Path) -> str:
    """A SQL list of quoted paths relative to ``base``, the views file's folder. View definitions cannot take
    bound parameters, so the paths (which the pipeline itself named) are written as quoted literals."""
    quoted = ["'" + path.relative_to(base).as_posix().replace("'", "''") + "'" for path in files]
    if not quoted:
        raise ValueError("a store view needs at least one file")
    return "[" + ", ".join(quoted) + "]"


def _view_sql(name: str, files: Iterable[Path], base: Path) -> str:
    return sql_text(name).replace("{files}", _file_list_literal(files, base))


def publish_store(
    con: duckdb.DuckDBPyConnection, analytics: Path, grace: timedelta = DEFAULT_GRACE, completing: str | None = None
) -> StoreSummary | None:
    """Bring the store at ``analytics`` up to date with the warehouse ``con``; None when nothing is published.

    The store shows only publications of completed runs. ``completing`` is a run that is about to be marked
    completed: the store already shows it so, because a run is completed only once readers can see it.
    """
    registry = {"completing": completing or "", "now": datetime.now(timezone.utc).replace(tzinfo=None)}
    keys = con.execute(sql_text("recs/publication_keys"), {"completing": registry["completing"]}).fetchall()
    if not keys:
        return None
    store = store_dir(analytics)
    generation = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"

    topk_files, exported = [], 0
    for ds, model, run_id in keys:
        path = partition_dir(store, ds, model) / f"{run_id}.parquet"
        if not path.exists():
            _write_parquet(fetch_arrow(con, "recs/topk_partition", {"ds": ds, "model": model}), path)
            exported += 1
        topk_files.append(path)

    snapshot_files = {}
    for name, (export, _) in SNAPSHOTS.items():
        snapshot_files[name] = store / name / f"{generation}.parquet"
        params = {key: registry[key] for key in EXPORT_PARAMETERS.get(name, ())}
        _write_parquet(fetch_arrow(con, export, params), snapshot_files[name])
    failpoint("analytics-files-written")

    base = analytics.parent
    statements = [sql_text("analytics/create_schemas"), _view_sql("analytics/topk_view", topk_files, base)]
    statements += [_view_sql(view, [snapshot_files[name]], base) for name, (_, view) in SNAPSHOTS.items()]
    statements.append(sql_text("recs/latest_topk_view"))
    _replace_database(analytics, statements)

    current = set(topk_files) | set(snapshot_files.values())
    folders = {path.parent for path in current} | _partition_folders(store)
    pruned = sum(_prune(folder, current, grace) for folder in folders)
    log.info("analytics store %s: %d partitions, %d exported, %d old files pruned", analytics, len(keys), exported, pruned)
    return StoreSummary(analytics, len(keys), exported, pruned)


def _replace_database(analytics: Path, statements: list[str]) -> None:
    analytics.parent.mkdir(parents=True, exist_ok=True)
    temporary = analytics.with_name(f".{analytics.name}.{uuid.uuid4().hex}.tmp")
    config = {"storage_compatibility_version": STORAGE_VERSION, "file_search_path": str(analytics.parent.resolve())}
    try:
        with duckdb.connect(str(temporary), config=config) as views:
            for statement in statements:
                views.execute(statement)
            for statement in comment_statements(views):
                views.execute(statement)
        os.replace(temporary, analytics)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)


def _partition_folders(store: Path) -> set[Path]:
    return {path.parent for path in (store / "topk").glob("ds=*/model=*/*.parquet")}


def _prune(folder: Path, current: set[Path], grace: timedelta) -> int:
    """Delete the folder's superseded files except the newest one (the previous generation) and recent ones."""
    superseded = sorted(
        (path for path in folder.glob("*.parquet") if path not in current), key=lambda p: p.stat().st_mtime, reverse=True
    )
    cutoff = time.time() - grace.total_seconds()
    removed = 0
    for path in superseded[1:]:
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_dead_temporaries(analytics: Path) -> int:
    """Delete the temporary files that runs which died mid-write left in the store (call it holding the writer
    lock: then no live writer has a temporary file open). Returns how many were removed."""
    candidates = [*analytics.parent.glob(f".{analytics.name}.*.tmp*"), *store_dir(analytics).glob("**/.*.tmp")]
    for path in candidates:
        path.unlink(missing_ok=True)
    return len(candidates)
