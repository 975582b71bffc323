"""Failpoints: named places where a run can be made to die with SIGKILL, to prove that it recovers from anywhere.

``GNNREC_FAILPOINT=<name>[:<n>]`` kills the process the ``n``-th time (default: the first) it reaches ``<name>``;
``GNNREC_FAILPOINT_TRACE=<file>`` appends the name of every point reached, one per line, so a test can enumerate
each (point, hit) of a reference run and crash at every one of them. Unset, a failpoint costs one dictionary
lookup. etcd, TiKV and FoundationDB test their recovery the same way; the points are part of the project.

Points named ``*-before-commit`` sit inside a stage's transaction, just before it commits; the others sit between
two stages. Per-day points are reached once per day a run ingests, catch-up days included.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

FAILPOINT_ENV = "GNNREC_FAILPOINT"
TRACE_ENV = "GNNREC_FAILPOINT_TRACE"

FAILPOINTS: dict[str, str] = {
    "run-registered": "the run's row is in ops.runs as running; nothing else written",
    "ingest-before-commit": "a day's raw, clean and quarantine rows and ops.ingest_files are staged, not committed",
    "ingest-committed": "a day is ingested and validated, its data contracts not yet decided",
    "contracts-before-commit": "a day's expectation results and verdict are staged, not committed",
    "contracts-committed": "a day's contracts are decided; the next day (or the graph) not started",
    "graph-before-commit": "new user, item, entity and relation indices are staged, not committed",
    "graph-committed": "indices assigned, no model trained yet",
    "trained": "a model's weights are saved to its checkpoint; nothing of it recorded yet",
    "metrics-before-commit": "the holdout metrics are staged, not committed",
    "metrics-committed": "the holdout metrics are recorded; the final model not trained yet",
    "publish-before-commit": "the top-K partition and its publication are staged, not committed",
    "publish-committed": "the top-K lists are published; the analysts' store not refreshed",
    "analytics-files-written": "the store's Parquet files are written; its views file not yet replaced",
    "analytics-refreshed": "the analysts' store shows the run; the run not yet marked completed",
    "finish-before-commit": "the run's completion is staged, not committed",
}


class _Hits:
    """How many times this process reached each point (the ``n`` of ``<name>:<n>``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()


_hits = _Hits()


def armed() -> tuple[str, int] | None:
    """The point and hit number ``GNNREC_FAILPOINT`` asks for, or None."""
    spec = os.environ.get(FAILPOINT_ENV, "").strip()
    if not spec:
        return None
    name, _, nth = spec.partition(":")
    if name not in FAILPOINTS:
        raise ValueError(f"{FAILPOINT_ENV}={spec!r}: unknown failpoint {name!r}; `gnnrec failpoints` lists them")
    if nth and not (nth.isdigit() and int(nth) >= 1):
        raise ValueError(f"{FAILPOINT_ENV}={spec!r}: the hit number after ':' must be a positive integer")
    return name, int(nth or 1)


def failpoint(name: str) -> None:
    """Die here with SIGKILL if ``GNNREC_FAILPOINT`` names this point and hit; record the hit when tracing."""
    if name not in FAILPOINTS:
        raise KeyError(f"unregistered failpoint {name!r}")
    _hits.counts[name] += 1
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(name + "\n")
    target = armed()
    if target is not None and target == (name, _hits.counts[name]):
        os.kill(os.getpid(), signal.SIGKILL)
