"""Helpers shared by the benchmarks: timing, peak memory of an isolated run, and the results files.

Benchmarks print their figures and write ``bench/results/<name>.json``; every target is a ratio to a floor that
the same run measures, because this machine's timings move by 2-3x with its load.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import queue as queue_module
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
SHARED_DATA = BENCH_DIR.parent.parent / "shared" / "data"


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(fn: Callable[..., Any], args: tuple, queue) -> None:
    torch.set_num_threads(torch.get_num_threads())
    started = time.perf_counter()
    result = fn(*args)
    queue.put((result, time.perf_counter() - started, peak_rss_mib()))


def run_isolated(fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """Run ``fn(*args)`` in a fresh process; return (its result, seconds, that process's peak RSS in MiB).

    A fresh process is the only way to get a peak RSS that belongs to one measurement alone.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(fn, args, queue))
    process.start()
    # Poll rather than block: a child that crashes never puts a result, and a plain get() would wait forever.
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except queue_module.Empty:
            if not process.is_alive():
                raise RuntimeError(f"benchmark child exited with {process.exitcode} before reporting") from None
    process.join()
    return result


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(minimum, median) wall seconds of ``repeats`` calls: the minimum is the figure least hurt by noise."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` with the machine, the command line that made it, and the figures."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "command": "python " + " ".join(sys.argv),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__},
        "figures": figures,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def recipe_override(text: str) -> tuple[str, str]:
    """Parse a ``FIELD=VALUE`` command-line override of one daily-flow parameter; pydantic converts the value."""
    import argparse

    from gnnrec.flows.params import DailyParams

    field_name, sep, value = text.partition("=")
    if not sep or field_name not in DailyParams.model_fields:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE with a DailyParams field, got {text!r}")
    return field_name, value


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(title)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def load_adjacency_lines(path: Path) -> tuple["np.ndarray", "np.ndarray"]:  # noqa: F821 - numpy imported lazily
    """Read a LightGCN-format ``user item item ...`` file into (users, items) arrays of internal indices."""
    import numpy as np

    users, items = [], []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 2:
                continue
            row = np.array(parts, dtype=np.int64)
            users.append(np.full(len(row) - 1, row[0]))
            items.append(row[1:])
    return np.concatenate(users), np.concatenate(items)


def rank_checkpoint_for_publishing(snapshot: Path, checkpoint: Path, k: int):
    """Rank a day's users as the flow publishes them, from a prepared snapshot and a trained checkpoint:
    ``(top-k lists, seconds loading, seconds ranking)``."""
    from datetime import date

    import torch

    from gnnrec.tasks.graph.snapshot import read_snapshot
    from gnnrec.tasks.learn.train import load_checkpoint
    from gnnrec.tasks.steps import TrainedModel, rank_for_publishing

    started = time.perf_counter()
    day = read_snapshot(snapshot)
    _, meta = load_checkpoint(checkpoint)
    trained = TrainedModel(checkpoint, date.fromisoformat(meta["as_of"]), None)
    loaded = time.perf_counter()
    top = rank_for_publishing(day, trained, k, torch.device("cpu"))
    return day, top, loaded - started, time.perf_counter() - loaded

