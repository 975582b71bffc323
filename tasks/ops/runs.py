"""The run registry: ``ops.runs`` (one row per flow run, with what it was made of) and ``ops.metrics`` (its
evaluation figures)."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from importlib import metadata
from pathlib import Path

import duckdb
import pyarrow as pa

from gnnrec.tasks.ops.db import sql_text, transaction
from gnnrec.tasks.learn.evaluate import Metric
from gnnrec.tasks.ops.failpoints import failpoint


def abandon_dead_runs(
    con: duckdb.DuckDBPyConnection, found_by: str, found_at: datetime, alive: Callable[[str], bool]
) -> list[str]:
    """Mark every run still ``running`` whose process is gone (``alive`` says no) as ``abandoned``, saying who found
    it and when; call it holding the writer lock. Returns the abandoned ids."""
    running = [run_id for (run_id,) in con.execute(sql_text("ops/running_runs")).fetchall()]
    dead = [run_id for run_id in running if run_id != found_by and not alive(run_id)]
    if not dead:
        return []
    with transaction(con):
        return [
            run_id for (run_id,) in con.execute(
                sql_text("ops/abandon_dead_runs"), {"found_by": found_by, "found_at": found_at, "dead": dead}
            ).fetchall()
        ]


def start_run(
    con: duckdb.DuckDBPyConnection, run_id: str, flow: str, ds: date, model: str, params: dict, started_at: datetime,
    flow_run_id: str | None = None,
) -> None:
    """Register a run as ``running``; ``flow_run_id`` is the Prefect flow run it belongs to."""
    con.execute(
        sql_text("ops/start_run"),
        {
            "run_id": run_id, "flow": flow, "ds": ds, "model": model,
            "params": json.dumps(params, sort_keys=True, default=str), "started_at": started_at,
            "flow_run_id": flow_run_id,
        },
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, finished_at: datetime, message: str | None = None
) -> None:
    con.execute(
        sql_text("ops/finish_run"), {"run_id": run_id, "status": status, "message": message, "finished_at": finished_at}
    )


def complete_run(
    con: duckdb.DuckDBPyConnection, run_id: str, stage_seconds: dict[str, float], finished_at: datetime
) -> None:
    """The run's last bookkeeping, all at once: its stage timings and ``completed``."""
    with transaction(con):
        record_stage_seconds(con, run_id, stage_seconds)
        finish_run(con, run_id, "completed", finished_at)
        failpoint("finish-before-commit")


def record_metrics(con: duckdb.DuckDBPyConnection, run_id: str, metrics: Sequence[Metric]) -> None:
    """Replace the run's rows of ``ops.metrics`` with ``metrics``, each with its protocol."""
    staged = pa.table(
        {
            "protocol": pa.array([m.protocol for m in metrics], pa.string()),
            "metric": pa.array([m.name for m in metrics], pa.string()),
            "k": pa.array([m.k for m in metrics], pa.int32()),
            "value": pa.array([m.value for m in metrics], pa.float64()),
        }
    )
    con.register("staged_metrics", staged)
    try:
        with transaction(con):
            con.execute(sql_text("ops/delete_metrics"), {"run_id": run_id})
            con.execute(sql_text("ops/insert_metrics"), {"run_id": run_id})
            failpoint("metrics-before-commit")
    finally:
        con.unregister("staged_metrics")


# Libraries whose versions decide a run's numbers; recorded with every run.
TRACKED_LIBRARIES = ("torch", "numpy", "duckdb", "polars", "pyarrow", "prefect", "pandera", "great-expectations")


@dataclass(frozen=True)
class Provenance:
    """What a run is made of besides its parameters: inputs, code, libraries, seed and device."""

    inputs_digest: str
    input_files: dict[str, str]
    code_version: str | None
    library_versions: dict[str, str]
    seed: int
    device: str


def inputs_digest(fingerprints: Iterable[tuple[str, str, str]]) -> str:
    """One sha256 over the ``(source, path, sha256)`` of every input file: equal digests, equal inputs."""
    digest = hashlib.sha256()
    for source, path, file_sha in sorted(fingerprints):
        digest.update(f"{source}\t{path}\t{file_sha}\n".encode())
    return digest.hexdigest()


def ingested_inputs(con: duckdb.DuckDBPyConnection, ds: date) -> tuple[str, dict[str, str]]:
    """The digest of every file ingested for days up to ``ds`` (what training sees), and ``ds``'s own files."""
    rows = con.execute(sql_text("ops/ingested_fingerprints"), {"ds": ds}).fetchall()
    digest = inputs_digest((source, path, file_sha or "") for _, source, path, file_sha in rows)
    return digest, {path: file_sha or "" for day, _, path, file_sha in rows if day == ds}


def code_version(project_dir: Path) -> str | None:
    """The git commit the code runs from (``+dirty`` when tracked files changed), or None outside a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_dir, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def record_provenance(con: duckdb.DuckDBPyConnection, run_id: str, provenance: Provenance) -> None:
    con.execute(
        sql_text("ops/record_provenance"),
        {
            "run_id": run_id, "inputs_digest": provenance.inputs_digest,
            "input_files": json.dumps(provenance.input_files, sort_keys=True),
            "code_version": provenance.code_version,
            "library_versions": json.dumps(provenance.library_versions, sort_keys=True),
            "seed": provenance.seed, "device": provenance.device,
        },
    )


def record_stage_seconds(con: duckdb.DuckDBPyConnection, run_id: str, stage_seconds: dict[str, float]) -> None:
    con.execute(
        sql_text("ops/record_stage_seconds"),
        {"run_id": run_id, "stage_seconds": json.dumps({k: round(v, 3) for k, v in stage_seconds.items()})},
    )


def completed_run_matching(con: duckdb.DuckDBPyConnection, ds: date, params: dict, digest: str) -> str | None:
    """The id of a completed run of ``ds`` with exactly these parameters and input digest, if there is one."""
    for run_id, recorded_params, recorded_digest in con.execute(sql_text("ops/completed_runs_of_day"), {"ds": ds}).fetchall():
        if recorded_digest == digest and json.loads(recorded_params) == json.loads(json.dumps(params, default=str)):
            return run_id
    return None


def previous_metrics(
    con: duckdb.DuckDBPyConnection, run_id: str, model: str, started_at: datetime
) -> tuple[str | None, dict[tuple[str, int], float]]:
    """The newest earlier completed run of ``model`` that has metrics, and those metrics."""
    rows = con.execute(
        sql_text("ops/previous_metrics"), {"run_id": run_id, "model": model, "started_at": started_at}
    ).fetchall()
    return (rows[0][0] if rows else None), {(metric, k): value for _, metric, k, value in rows}


def recent_runs(con: duckdb.DuckDBPyConnection, limit: int) -> pa.Table:
    return con.sql(sql_text("ops/recent_runs"), params={"limit": limit}).to_arrow_table()


def find_runs(con: duckdb.DuckDBPyConnection, run_id_prefix: str) -> list[dict]:
    """Runs whose id starts with ``run_id_prefix``, each as a column -> value dict, with its metrics."""
    relation = con.sql(sql_text("ops/run_by_id"), params={"run_id": run_id_prefix})
    runs = [dict(zip(relation.columns, row)) for row in relation.fetchall()]
    for run in runs:
        run["metrics"] = {
            (protocol, metric, k): value
            for protocol, metric, k, value in con.execute(sql_text("ops/run_metrics"), {"run_id": run["run_id"]}).fetchall()
        }
    return runs
