"""Time to quality: wall time from the raw Gowalla files to LightGCN Recall@20 >= 0.17 and >= 0.18 on the test
split, with gnnrec's fast recipe, on 2 CPU threads.

    python bench/time_to_quality.py [--max-epochs 120] [--eval-every 5]

The clock starts before the import and covers ingest, validation, graph build and training. The test split is
only *measured* every ``--eval-every`` epochs (its time is excluded from the clock); it never steers training.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED_DATA, peak_rss_mib, print_table, write_results  # noqa: E402
from bench.reproduce import CASES  # noqa: E402
from gnnrec.models.registry import resolve_config, resolve_recipe  # noqa: E402
from gnnrec.tasks import steps  # noqa: E402
from gnnrec.tasks.ops.db import connect  # noqa: E402
from gnnrec.tasks.learn.evaluate import evaluate_holdout  # noqa: E402
from gnnrec.tasks.graph.ids import catalog_sizes, load_graph, load_holdout, unavailable_items  # noqa: E402
from gnnrec.tasks.data.importers import import_dataset  # noqa: E402
from gnnrec.tasks.learn.train import EpochProgress, fit  # noqa: E402

THRESHOLDS = (0.17, 0.18)


def _field_value(text: str) -> tuple[str, str]:
    field, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    return field, value


class _Stop(Exception):
    """Raised from the epoch callback once the last threshold is reached."""


def figures(recipe, prepared: float, curve: list[dict], reached: dict[float, dict]) -> dict:
    return {
        "recipe": dataclasses.asdict(recipe),
        "prepare_seconds": round(prepared, 1),
        "curve": curve,
        **{f"seconds_to_recall_{t}": (reached[t]["seconds"] if t in reached else None) for t in THRESHOLDS},
        "target": "recall@20 >= 0.17 in under 1200 s",
        "peak_rss_mib": round(peak_rss_mib()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=resolve_recipe("lightgcn").epochs)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[], type=_field_value,
                        metavar="FIELD=VALUE", help="change one field of LightGCN's Recipe, e.g. lr_decay=0.95")
    parser.add_argument("--results", default="time_to_quality", help="name of the results file under bench/results")
    args = parser.parse_args()
    torch.set_num_threads(2)
    case = CASES["lightgcn-gowalla"]
    # LightGCN's default recipe, trained out to --max-epochs: the test split is only measured, so early stopping on
    # the validation part is off (patience 0) and the clock sees every epoch.
    recipe = resolve_recipe(case.model, dict(args.overrides) | {"epochs": args.max_epochs, "patience": 0})
    curve: list[dict] = []
    reached: dict[float, dict] = {}
    measuring = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        landing, db = Path(tmp) / "landing", Path(tmp) / "gnnrec.duckdb"
        started = time.perf_counter()
        import_dataset(case.import_format, SHARED_DATA / case.folder, landing, day=case.ds)
        for day in steps.pending_days(db, landing, case.ds):
            steps.ingest(db, landing, day)
        steps.build_graph(db, case.ds)
        with connect(db) as con:
            holdout = load_holdout(con, case.ds, 1)
            graph = load_graph(con, catalog_sizes(con, case.ds), holdout.cutoff)
            unavailable = unavailable_items(con, holdout.cutoff, case.ds)
        prepared = time.perf_counter() - started

        def on_epoch(progress: EpochProgress) -> None:
            nonlocal measuring
            epoch, loss, model = progress.epoch, progress.loss, progress.model
            if epoch % args.eval_every:
                return
            paused = time.perf_counter()
            elapsed = paused - started - measuring  # the clock stops while the test split is measured
            with torch.no_grad():
                metrics = evaluate_holdout(model.scorer(), graph, holdout, unavailable, torch.device("cpu"), ks=(20,))
            measuring += time.perf_counter() - paused
            point = {"epoch": epoch, "seconds": round(elapsed, 1),
                     "loss": round(loss, 5), "recall@20": round(metrics[("recall", 20)], 4),
                     "ndcg@20": round(metrics[("ndcg", 20)], 4)}
            curve.append(point)
            print(f"  epoch {epoch:>3}  {point['seconds']:>7.1f} s  recall@20 {point['recall@20']:.4f}  ndcg@20 {point['ndcg@20']:.4f}", flush=True)
            for threshold in THRESHOLDS:
                if threshold not in reached and point["recall@20"] >= threshold:
                    reached[threshold] = point
            # Written after every measurement, so a run stopped early still leaves its curve.
            write_results(args.results, figures(recipe, prepared, curve, reached))
            if len(reached) == len(THRESHOLDS):
                raise _Stop

        try:
            fit(case.model, graph, resolve_config(case.model), recipe, torch.device("cpu"), on_epoch)
        except _Stop:
            pass
    results = figures(recipe, prepared, curve, reached)
    print_table("time to quality: raw Gowalla files -> LightGCN recall@20 (2 threads)", [
        ("import + ingest + validate + graph", f"{prepared:.1f} s"),
        *[(f"to recall@20 >= {t}", f"{reached[t]['seconds']:.0f} s (epoch {reached[t]['epoch']})" if t in reached
           else f"not reached in {args.max_epochs} epochs (best {max(p['recall@20'] for p in curve):.4f})")
          for t in THRESHOLDS],
        ("peak RSS", f"{results['peak_rss_mib']} MiB"),
    ])
    write_results(args.results, results)


if __name__ == "__main__":
    main()
