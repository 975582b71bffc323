"""Depth study (issue 12): LightGCN and NGCF with 0-6 propagation layers, the same training budget at every depth,
Recall@20 and NDCG@20 on the full ranking, overall and split by user degree (cold: <= 10 training interactions).

    python bench/depth.py [--models lightgcn,ngcf] [--datasets ml100k,lastfm] [--layers 0,1,2,3,4,5,6]
                          [--epochs 30] [--device cpu|cuda] [--set FIELD=VALUE ...] [--fresh]
    python bench/depth.py --plot          # bench/results/depth.png from bench/results/depth.json

Datasets: ML-100K ``u1.base`` / ``u1.test`` (every rating an implicit interaction, as the ``lightgcn-ml100k``
reproduction case lands it) and Last.FM as LightGCN-PyTorch ships it (``data1.txt`` / ``test1.txt``). Gowalla
(the LightGCN authors' ``train.txt`` / ``test.txt``) only on request. On CPU that is for LightGCN (7 depths x 30
epochs: about 35 minutes here): NGCF takes about 80 s a Gowalla epoch on one thread here (``bench/ngcf_epoch.py``),
so its 7 depths x 30 epochs would take about 5 hours on this shared 2-core machine. ``--device cuda`` trains and
ranks on a GPU instead (NGCF on Gowalla was run so, on an H200); each run's row records the device it ran on.
CUDA runs are not bit-reproducible (the trainer asks for deterministic kernels on CPU only).

The test set is what the daily flow's holdout keeps: test pairs of users and items that occur in training, less the
pairs already in training; every item the user has not trained on is ranked (``tasks.learn.evaluate.full_ranking``,
the pipeline's Recall@20 / NDCG@20). Training is the pipeline's ``tasks.learn.train.fit`` with the model's default
recipe except: ``epochs`` (30), no validation part and so no early stopping (every depth gets the whole budget),
and uniform negatives, one per positive (``negative_sampling=uniform``, ``negatives=1``); same seed everywhere.

Each (model, dataset, depth) is written to ``bench/results/depth.json`` as soon as it finishes; a re-run skips what
is there with the same recipe (``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS_DIR, SHARED_DATA, load_adjacency_lines, print_table, write_results  # noqa: E402
from gnnrec.models.base import GraphData, Recipe  # noqa: E402
from gnnrec.models.registry import model_class  # noqa: E402
from gnnrec.tasks.learn.evaluate import full_ranking  # noqa: E402
from gnnrec.tasks.learn.train import fit  # noqa: E402

COLD_MAX_DEGREE = 10
K = 20
DATASETS = {
    "ml100k": ("ml-100k", "u1.base", "u1.test", "ML-100K u1 (implicit)"),
    "lastfm": ("lastfm-social", "data1.txt", "test1.txt", "Last.FM (LightGCN-PyTorch split)"),
    # Only on request (--datasets gowalla): see the docstring and NOT_RUN.
    "gowalla": ("gowalla", "train.txt", "test.txt", "Gowalla (LightGCN authors' split)"),
}
NOT_RUN = {
    "ngcf/gowalla": "not run: NGCF takes ~80 s per Gowalla epoch on one thread here (bench/results/ngcf-epoch.json), "
                    "so 7 depths x 30 epochs would take about 5 hours on this shared 2-core CPU machine; "
                    "python bench/depth.py --datasets gowalla --models ngcf --device cuda runs it on a GPU",
    "lightgcn/gowalla": "not run (about 10 s per epoch here, 7 depths x 30 epochs: about an hour); "
                        "python bench/depth.py --datasets gowalla --models lightgcn adds it",
}


def _read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.parent.name == "gowalla":  # the LightGCN authors' "user item item ..." lines
        return load_adjacency_lines(path)
    table = np.loadtxt(path, dtype=np.float64, usecols=(0, 1), ndmin=2)
    return table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)


def load_dataset(name: str) -> tuple[GraphData, np.ndarray, np.ndarray]:
    """The training graph (dense indices in order of the files' ids) and the test pairs the flow's holdout keeps."""
    folder, train_file, test_file, _ = DATASETS[name]
    train_users, train_items = _read_pairs(SHARED_DATA / folder / train_file)
    test_users, test_items = _read_pairs(SHARED_DATA / folder / test_file)
    user_ids, item_ids = np.unique(train_users), np.unique(train_items)
    train = np.unique(np.stack([np.searchsorted(user_ids, train_users), np.searchsorted(item_ids, train_items)]), axis=1)
    known = np.isin(test_users, user_ids) & np.isin(test_items, item_ids)
    test = np.unique(np.stack([np.searchsorted(user_ids, test_users[known]), np.searchsorted(item_ids, test_items[known])]),
                     axis=1)
    trained = set(zip(train[0].tolist(), train[1].tolist()))
    new = np.array([(u, i) not in trained for u, i in zip(test[0].tolist(), test[1].tolist())], dtype=bool)
    graph = GraphData(len(user_ids), len(item_ids), train[0], train[1])
    return graph, test[0][new], test[1][new]


def depth_recipe(model: str, epochs: int, overrides: dict[str, Any]) -> Recipe:
    base = model_class(model).recipe
    fields = {"epochs": epochs, "validation_share": 0.0, "negative_sampling": "uniform", "negatives": 1} | overrides
    return replace(base, **{key: type(getattr(base, key))(value) if not isinstance(getattr(base, key), bool)
                            else value for key, value in fields.items()})


def run_one(model: str, graph: GraphData, test_users: np.ndarray, test_items: np.ndarray, layers: int,
            recipe: Recipe, device: torch.device) -> dict[str, Any]:
    cls = model_class(model)
    config = replace(cls.Config(), num_layers=layers)
    started = time.perf_counter()
    trained, report = fit(model, graph, config, recipe, device)
    train_seconds = time.perf_counter() - started
    scorer = trained.scorer()
    degree = np.bincount(graph.train_users, minlength=graph.num_users)
    cold = degree[test_users] <= COLD_MAX_DEGREE
    no_items = np.empty(0, np.int64)
    figures: dict[str, Any] = {"layers": layers, "device": device.type, "train_seconds": round(train_seconds, 1),
                               "final_loss": round(report.final_loss, 5) if report.final_loss is not None else None}
    for part, mask in (("all", np.ones(len(test_users), bool)), ("cold", cold), ("warm", ~cold)):
        users = np.unique(test_users[mask])
        figures[f"{part}_users"] = len(users)
        if len(users) == 0:
            continue
        metrics = full_ranking(scorer, graph, test_users[mask], test_items[mask], no_items, device, ks=(K,))
        figures[f"{part}_recall@{K}"] = round(metrics["recall", K], 4)
        figures[f"{part}_ndcg@{K}"] = round(metrics["ndcg", K], 4)
    return figures


def _load_previous(name: str) -> dict[str, Any]:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["figures"]


def plot(figures: dict[str, Any], path: Path, others: dict[str, dict[str, Any]] | None = None) -> None:
    """Recall@20 by depth (left) and split by user degree (right); ``others`` (name: figures of the same study with
    another seed) are drawn on the left as small crosses, so the spread between seeds shows next to each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6.8), sharex=True)
    styles = {"lightgcn": "-", "ngcf": "--"}
    colours = {"ml100k": "tab:blue", "lastfm": "tab:orange", "gowalla": "tab:green"}
    for key, runs in sorted(figures.get("runs", {}).items()):
        model, dataset = key.split("/")
        rows = sorted(runs.values(), key=lambda row: row["layers"])
        layers = [row["layers"] for row in rows]
        label = f"{model} {dataset}" + (" (GPU)" if any(row.get("device") == "cuda" for row in rows) else "")
        left.plot(layers, [row[f"all_recall@{K}"] for row in rows], styles[model], marker="o", color=colours[dataset],
                  label=label, linewidth=1.8)
        for part, marker, alpha in (("cold", "v", 1.0), ("warm", "^", 0.45)):
            values = [row.get(f"{part}_recall@{K}", np.nan) for row in rows]
            right.plot(layers, values, styles[model], marker=marker, color=colours[dataset], alpha=alpha,
                       label=f"{label}, {part}")
    for _name, other in sorted((others or {}).items()):
        for key, runs in sorted(other.get("runs", {}).items()):
            dataset = key.split("/")[1]
            rows = sorted(runs.values(), key=lambda row: row["layers"])
            left.plot([row["layers"] for row in rows], [row[f"all_recall@{K}"] for row in rows], "x",
                      color=colours[dataset], markersize=6, label=None if key != sorted(other["runs"])[0] else
                      f"the same runs, seed {other['recipes'][key]['recipe']['seed']} (x)")
    left.set_title(f"Recall@{K}, all test users (same budget per depth)", fontsize=10)
    cold = ", ".join(f"{name} {info['cold_test_users']} of {info['test_users']}"
                     for name, info in sorted(figures.get("datasets", {}).items())
                     if any(key.endswith("/" + name) for key in figures.get("runs", {})))
    right.set_title(f"Recall@{K}: cold users (<= {COLD_MAX_DEGREE} training items, ▼) vs the rest (▲)\n"
                    f"cold test users: {cold}", fontsize=10)
    for axis in (left, right):
        axis.set_xlabel("propagation layers")
        axis.set_ylabel(f"Recall@{K}")
        axis.grid(alpha=0.3)
    left.legend(fontsize=8, handlelength=3.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    right.legend(fontsize=8, handlelength=3.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    recipes = [run["recipe"] for key, run in figures.get("recipes", {}).items() if figures.get("runs", {}).get(key)]
    epochs = "/".join(str(value) for value in sorted({recipe["epochs"] for recipe in recipes}))
    seeds = "/".join(str(value) for value in sorted({recipe["seed"] for recipe in recipes}))
    names = ", ".join(DATASETS[name][3] for name in DATASETS if any(key.endswith("/" + name) for key in figures["runs"]))
    fig.suptitle(f"LightGCN (solid) and NGCF (dashed) by depth: {names}\n{epochs} epochs at every depth, seed {seeds} "
                 "(lines); full ranking of every item the user has not trained on (bench/depth.py)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lightgcn,ngcf")
    parser.add_argument("--datasets", default="ml100k,lastfm")
    parser.add_argument("--layers", default="0,1,2,3,4,5,6")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where to train and rank (recorded in each run's row); cuda is not bit-reproducible")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one Recipe field for every run, e.g. learning_rate=0.01")
    parser.add_argument("--fresh", action="store_true", help="ignore bench/results/depth.json and start over")
    parser.add_argument("--plot", action="store_true", help="only draw bench/results/<name>.png from <name>.json")
    parser.add_argument("--name", default="depth", help="results name: bench/results/<name>.json and .png")
    parser.add_argument("--also", action="append", default=[], metavar="NAME",
                        help="with --plot: draw bench/results/<NAME>.json (another seed) as crosses too")
    args = parser.parse_args()
    if args.plot:
        plot(_load_previous(args.name), RESULTS_DIR / f"{args.name}.png", {name: _load_previous(name) for name in args.also})
        return
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    overrides = dict(text.split("=", 1) for text in args.overrides)
    figures = {} if args.fresh else _load_previous(args.name)
    figures.setdefault("runs", {})
    figures.setdefault("recipes", {})
    figures.setdefault("datasets", {})
    figures["cold_max_degree"] = COLD_MAX_DEGREE
    figures["protocol"] = ("full ranking over every item the user has not trained on (tasks.learn.evaluate."
                           "full_ranking); test pairs of users and items seen in training, less training pairs")
    for dataset in args.datasets.split(","):
        graph, test_users, test_items = load_dataset(dataset)
        degree = np.bincount(graph.train_users, minlength=graph.num_users)
        test_set = np.unique(test_users)
        figures["datasets"][dataset] = {
            "summary": DATASETS[dataset][3], "users": graph.num_users, "items": graph.num_items,
            "train_pairs": len(graph.train_users), "test_pairs": len(test_users), "test_users": len(test_set),
            "cold_test_users": int((degree[test_set] <= COLD_MAX_DEGREE).sum()),
        }
        print(f"{dataset}: {figures['datasets'][dataset]}", flush=True)
        for model in args.models.split(","):
            key = f"{model}/{dataset}"
            recipe = depth_recipe(model, args.epochs, overrides)
            recipe_fields = asdict(recipe)
            batch = recipe.steps_batch_size(len(graph.train_users))
            if figures["recipes"].get(key, {}).get("recipe") != recipe_fields:
                figures["runs"][key] = {}  # a different recipe: earlier depths are not comparable
            figures["recipes"][key] = {"recipe": recipe_fields, "batch_size": batch,
                                       "steps_per_epoch": -(-len(graph.train_users) // batch)}
            runs = figures["runs"].setdefault(key, {})
            for layers in map(int, args.layers.split(",")):
                if str(layers) in runs:
                    print(f"{key} layers {layers}: done before, skipped", flush=True)
                    continue
                row = run_one(model, graph, test_users, test_items, layers, recipe, device)
                runs[str(layers)] = row
                figures["not_run"] = {key: why for key, why in NOT_RUN.items() if not figures["runs"].get(key)}
                print(f"{key} layers {layers}: {row}", flush=True)
                write_results(args.name, figures)
    table = []
    for key, runs in sorted(figures["runs"].items()):
        for layers, row in sorted(runs.items(), key=lambda item: int(item[0])):
            table.append((f"{key} L={layers}", f"R@20 {row['all_recall@20']:.4f}  N@20 {row['all_ndcg@20']:.4f}  "
                          f"cold R@20 {row.get('cold_recall@20', float('nan')):.4f}  warm R@20 "
                          f"{row.get('warm_recall@20', float('nan')):.4f}  ({row['train_seconds']} s, "
                          f"{row.get('device', 'cpu')})"))
    figures["not_run"] = {key: why for key, why in NOT_RUN.items() if not figures["runs"].get(key)}
    print_table("depth study", table)
    write_results(args.name, figures)
    plot(figures, RESULTS_DIR / f"{args.name}.png")


if __name__ == "__main__":
    main()
