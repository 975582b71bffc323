"""Seconds per NGCF epoch on Gowalla, next to LightGCN's and next to NGCF's floor, all timed in the same process
(issue 12).

    python bench/ngcf_epoch.py [--steps 8] [--rounds 2] [--threads 1]

Ours = the pipeline's real training step (``tasks.learn.train.EpochContext.step``: the recipe's batch with its
negatives, ``model.encode()``, the hardest of the candidates for dynamic negatives, BPR + L2, backward, Adam), under
the deterministic kernels the pipeline trains with, for NGCF and LightGCN with their default configs and recipes
(batch size from each recipe). The models are built by ``build_model`` from a :class:`models.base.GraphData` of
Gowalla's ``train.txt``, so the adjacency is the models' own (``from_graph``). ``--steps`` steps are timed after one
warm-up step, scaled to the recipe's steps per epoch; the best of ``--rounds`` rounds (sides alternate).

NGCF's floor = what its three layers must compute whatever the code around them: the sparse products (normalised
adjacency x a ``(U+I) x 64`` matrix per layer, forward and backward) and the dense transforms (``W1`` and ``W2``
matmuls, ``(U+I) x 64`` by ``64 x 64`` per layer, forward and backward). The sparse part alone is LightGCN's floor.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED_DATA, load_adjacency_lines, peak_rss_mib, print_table, write_results  # noqa: E402
from gnnrec.models.adjacency import symmetric_propagate  # noqa: E402
from gnnrec.models.base import GraphData, PairBatch  # noqa: E402
from gnnrec.models.registry import build_model, model_class  # noqa: E402
from gnnrec.tasks.learn.train import EpochContext, deterministic_kernels, examples_per_epoch, seed_everything  # noqa: E402

CPU = torch.device("cpu")


def _step_seconds(name: str, graph: GraphData, steps: int) -> tuple[float, int, int]:
    """(seconds per training step, batch size, steps per epoch) of the named model with its default recipe."""
    cls = model_class(name)
    recipe = cls.recipe
    seed_everything(recipe.seed)
    with deterministic_kernels(CPU):
        model = build_model(name, graph, cls.Config(), CPU)
        model.train()
        examples = examples_per_epoch(model, graph)
        batch_size = recipe.steps_batch_size(examples)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
        context = EpochContext(model, graph, recipe, CPU, np.random.default_rng(recipe.seed), optimizer, batch_size)
        batches = context.batches(PairBatch)
        context.step(next(batches))  # warm-up: the epoch's sampling set-up, first allocations
        started = time.perf_counter()
        for _ in range(steps):
            context.step(next(batches))
        seconds = (time.perf_counter() - started) / steps
    return seconds, batch_size, -(-examples // batch_size)


def _step_phases(name: str, graph: GraphData, steps: int) -> dict[str, float]:
    """Where one training step's time goes: the phases of ``EpochContext.step`` timed one by one (the same calls in
    the same order, with a clock between them), seconds per step."""
    from gnnrec.tasks.learn.train import hardest_negatives

    cls = model_class(name)
    recipe = cls.recipe
    seed_everything(recipe.seed)
    phases = dict.fromkeys(("batch", "encode", "negatives", "loss", "backward", "optimizer"), 0.0)
    with deterministic_kernels(CPU):
        model = build_model(name, graph, cls.Config(), CPU)
        model.train()
        batch_size = recipe.steps_batch_size(examples_per_epoch(model, graph))
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
        context = EpochContext(model, graph, recipe, CPU, np.random.default_rng(recipe.seed), optimizer, batch_size)
        batches = context.batches(PairBatch)
        context.step(next(batches))  # warm-up
        for _ in range(steps):
            clock = time.perf_counter()
            batch = next(batches)
            phases["batch"] += time.perf_counter() - clock
            clock = time.perf_counter()
            encoded = model.encode()
            phases["encode"] += time.perf_counter() - clock
            clock = time.perf_counter()
            if recipe.negative_sampling == "dynamic" and batch.negatives.dim() == 2:
                batch = PairBatch(batch.users, batch.positives, hardest_negatives(encoded, batch.users, batch.negatives))
            phases["negatives"] += time.perf_counter() - clock
            clock = time.perf_counter()
            loss = model.loss(batch, encoded, recipe)
            phases["loss"] += time.perf_counter() - clock
            clock = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            phases["backward"] += time.perf_counter() - clock
            clock = time.perf_counter()
            optimizer.step()
            loss.item()
            phases["optimizer"] += time.perf_counter() - clock
    return {phase: seconds / steps for phase, seconds in phases.items()}


def _floor_seconds(adjacency: torch.Tensor, widths: list[int], steps: int) -> tuple[float, float]:
    """(sparse, dense) seconds per step: per layer one ``A @ E`` forward and backward (the symmetric backward the
    models use), and the layer's ``E W1`` and ``E' W2`` forward and backward."""
    nodes = adjacency.shape[0]
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.nn.Parameter(torch.randn(nodes, width, generator=generator) * 0.1) for width in widths[:-1]]
    weights = [(torch.nn.Parameter(torch.randn(a, b, generator=generator) * 0.1),
                torch.nn.Parameter(torch.randn(a, b, generator=generator) * 0.1)) for a, b in zip(widths, widths[1:])]

    def sparse() -> None:
        total = sum(symmetric_propagate(adjacency, x).sum() for x in inputs)
        total.backward()

    def dense() -> None:
        total = sum((x @ w1).sum() + (x @ w2).sum() for x, (w1, w2) in zip(inputs, weights))
        total.backward()

    measured = []
    for work in (sparse, dense):
        work()  # warm-up
        started = time.perf_counter()
        for _ in range(steps):
            work()
        measured.append((time.perf_counter() - started) / steps)
    return measured[0], measured[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="training steps timed per model and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the best of them counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    users, items = load_adjacency_lines(SHARED_DATA / "gowalla" / "train.txt")
    graph = GraphData(int(users.max()) + 1, int(items.max()) + 1, users, items)
    ngcf = build_model("ngcf", graph, None, CPU)
    ngcf.eval()
    adjacency = ngcf._adjacency()  # the model's own operator; in eval mode, without node dropout
    config = ngcf.config
    widths = [config.embedding_dim] + [config.layer_dim] * config.num_layers
    del ngcf

    best = {"ngcf": float("inf"), "lightgcn": float("inf"), "sparse": float("inf"), "dense": float("inf")}
    shapes: dict[str, tuple[int, int]] = {}
    for round_ in range(args.rounds):
        for name in ("ngcf", "lightgcn"):
            seconds, batch_size, steps_per_epoch = _step_seconds(name, graph, args.steps)
            best[name] = min(best[name], seconds)
            shapes[name] = (batch_size, steps_per_epoch)
            print(f"round {round_ + 1}: {name} {seconds:.3f} s/step", flush=True)
        sparse, dense = _floor_seconds(adjacency, widths, args.steps)
        best["sparse"], best["dense"] = min(best["sparse"], sparse), min(best["dense"], dense)
        print(f"round {round_ + 1}: floor sparse {sparse:.3f} dense {dense:.3f} s/step", flush=True)

    # Where the time goes, after the timed rounds (so it cannot slow them): the step's phases one by one.
    phases = {name: _step_phases(name, graph, args.steps) for name in ("ngcf", "lightgcn")}
    for name, parts in phases.items():
        print(f"{name} phases: " + ", ".join(f"{phase} {seconds:.3f}" for phase, seconds in parts.items()), flush=True)
    floor = best["sparse"] + best["dense"]
    ngcf_steps, lightgcn_steps = shapes["ngcf"][1], shapes["lightgcn"][1]
    figures = {
        "dataset": "gowalla train.txt", "users": graph.num_users, "items": graph.num_items,
        "interactions": len(users), "adjacency_nnz": int(adjacency.values().numel()),
        "threads": args.threads, "timed_steps_per_round": args.steps, "rounds": args.rounds,
        "ngcf": {
            "config": asdict(config),
            "batch_size": shapes["ngcf"][0], "steps_per_epoch": ngcf_steps,
            "seconds_per_step": round(best["ngcf"], 4), "seconds_per_epoch": round(best["ngcf"] * ngcf_steps, 1),
        },
        "lightgcn": {
            "batch_size": shapes["lightgcn"][0], "steps_per_epoch": lightgcn_steps,
            "seconds_per_step": round(best["lightgcn"], 4),
            "seconds_per_epoch": round(best["lightgcn"] * lightgcn_steps, 1),
        },
        "ngcf_floor": {
            "what": f"{config.num_layers} layers: A @ E forward+backward (symmetric backward), E @ W1 and E' @ W2 "
                    f"forward+backward, (U+I) x {config.layer_dim}",
            "sparse_seconds_per_step": round(best["sparse"], 4), "dense_seconds_per_step": round(best["dense"], 4),
            "seconds_per_step": round(floor, 4), "seconds_per_epoch": round(floor * ngcf_steps, 1),
        },
        "step_phases_seconds": {name: {phase: round(v, 4) for phase, v in parts.items()} for name, parts in phases.items()},
        "ngcf_step_over_floor": round(best["ngcf"] / floor, 2),
        "lightgcn_step_over_sparse_floor": round(best["lightgcn"] / best["sparse"], 2),
        "ngcf_epoch_over_lightgcn_epoch": round(best["ngcf"] * ngcf_steps / (best["lightgcn"] * lightgcn_steps), 2),
        "peak_rss_mib": round(peak_rss_mib()),
    }
    print_table(f"NGCF vs LightGCN on Gowalla, seconds per epoch ({args.threads} thread(s), best of {args.rounds})", [
        ("NGCF, training step", f"{best['ngcf']:.3f} s/step x {ngcf_steps} steps (batch {shapes['ngcf'][0]}) = "
                                f"{figures['ngcf']['seconds_per_epoch']} s/epoch"),
        ("LightGCN, training step", f"{best['lightgcn']:.3f} s/step x {lightgcn_steps} steps (batch "
                                    f"{shapes['lightgcn'][0]}) = {figures['lightgcn']['seconds_per_epoch']} s/epoch"),
        ("NGCF floor: sparse products", f"{best['sparse']:.3f} s/step"),
        ("NGCF floor: dense transforms", f"{best['dense']:.3f} s/step"),
        ("NGCF floor, together", f"{floor:.3f} s/step = {figures['ngcf_floor']['seconds_per_epoch']} s/epoch"),
        *[(f"{name} phases", ", ".join(f"{phase} {v:.3f}" for phase, v in parts.items())) for name, parts in phases.items()],
        ("NGCF step / its floor", f"{figures['ngcf_step_over_floor']}"),
        ("LightGCN step / sparse floor", f"{figures['lightgcn_step_over_sparse_floor']}"),
        ("NGCF epoch / LightGCN epoch", f"{figures['ngcf_epoch_over_lightgcn_epoch']}"),
        ("peak RSS", f"{figures['peak_rss_mib']} MiB"),
    ])
    write_results("ngcf-epoch", figures)


if __name__ == "__main__":
    main()
