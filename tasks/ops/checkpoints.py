"""Model checkpoints: ``<db folder>/checkpoints/<run_id>/`` holds a run's trained weights (``holdout.pt``,
``final.pt``). They are kept for the newest N completed runs of each model, not forever.

After a run completes, :func:`prune_checkpoints` deletes the checkpoint folders of that model's older runs: every
run that is not ``running`` and started before the N-th newest completed one (a failed run newer than that keeps
its weights for inspection). A running run's folder is never touched; an abandoned run's is removed when a later
run finds it dead (``flows/daily.py``, ``clear_dead_runs``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import duckdb

from gnnrec.tasks.ops.db import sql_text

log = logging.getLogger(__name__)

DEFAULT_KEEP = 3


def checkpoint_root(db: Path) -> Path:
    return db.parent / "checkpoints"


def checkpoint_dir(db: Path, run_id: str) -> Path:
    return checkpoint_root(db) / run_id


def runs_to_prune(runs: list[tuple[str, str]], keep: int) -> list[str]:
    """Of a model's runs ``(run_id, status)``, newest first, those whose checkpoints go: every run not ``running``
    after the ``keep``-th completed one (all that are not running when ``keep`` is 0)."""
    completed, pruned = 0, []
    for run_id, status in runs:
        if completed >= keep and status != "running":
            pruned.append(run_id)
        if status == "completed":
            completed += 1
    return pruned


def prune_checkpoints(con: duckdb.DuckDBPyConnection, db: Path, model: str, keep: int = DEFAULT_KEEP) -> list[str]:
    """Delete the checkpoint folders of ``model``'s runs beyond its newest ``keep`` completed ones (call it once a
    run of ``model`` has completed). Returns the run ids whose folder was removed."""
    runs = con.execute(sql_text("ops/model_runs"), {"model": model}).fetchall()
    removed = []
    for run_id in runs_to_prune(runs, keep):
        folder = checkpoint_dir(db, run_id)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(run_id)
    if removed:
        log.info("removed the checkpoints of %d older %s run(s), keeping the newest %d completed", len(removed), model, keep)
    return removed
