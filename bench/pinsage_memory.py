"""PinSage's training memory against LightGCN's on Gowalla, at several graph sizes (issue 12).

Is a PinSage step's memory bounded by the batch's sampled neighbourhoods rather than by the graph?

    python bench/pinsage_memory.py [--steps 20] [--scales 0.1,0.5,1,2] [--models lightgcn,pinsage] [--threads 1]
                                   [--batch-size B --name pinsage-memory-batchB]

Design:

- Graphs: Gowalla's ``train.txt`` (``load_dataset("gowalla")`` of ``bench/depth.py``) at each ``--scales`` value.
  A scale below 1 keeps that share of the users (seeded), with all their interactions, and the items they touched;
  a whole scale above 1 is that many disjoint copies of Gowalla side by side (same degrees, same walks, ``n`` times
  the users, items and edges), the simplest bigger graph of the same shape this data gives.
- Each (model, graph) is measured in a fresh process (``bench.common.run_isolated``), so a peak belongs to it alone.
  The child builds the model as ``tasks.learn.train.fit`` does (``build_model`` with the default ``resolve_config``,
  seeded, under ``deterministic_kernels``) and trains ``--steps`` real steps with the pipeline's own
  ``EpochContext`` (its pair batches and negatives, ``step``: encode, loss, backward, Adam), with the recipe's
  ``batch_size`` (or ``--batch-size``, the same for both models) held fixed at every graph size (the recipe's
  ``min_steps_per_epoch`` would shrink the batch on the smaller graph, which would confound the comparison). A batch
  whose neighbourhood bound ``batch x (1 + negatives) x (1 + T)^layers`` lies below the catalog shows whether the
  step's memory follows that bound or the graph.
- Memory, all resident (``VmRSS``), each after ``gc`` and ``malloc_trim`` hand freed heap back: *built* once the
  graph is loaded and the model built; *baseline* once the first batch is drawn, which sets the epoch up (the
  trainer's visiting order and negative sampler's table, arrays over all the edges for either model: reported
  apart as ``epoch_setup_mib``). Then the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``), because
  building PinSage (the random walks) or LightGCN (the adjacency) can peak higher than training and would hide the
  training's own peak. Step increment = the peak over the steps (the first step included: it allocates Adam's
  moments) minus the baseline; training increment = the same peak minus *built*. ``load_and_build_peak_rss_mib``
  is the process's peak before the reset.
- Context, from the model itself: parameter bytes and ``3 x`` that (dense gradients plus Adam's two moments, which
  every embedding model trained by Adam carries, MF included, and which grow with the number of users and items);
  the graph's own tensors (the model's buffers: LightGCN's CSR adjacency, PinSage's neighbour table); and the rows a
  step computes: all ``U + I`` nodes per layer for LightGCN; for PinSage the distinct items whose input vectors its
  batch's 2-hop sampled neighbourhood needs (counted by a hook on ``item_features``), against its bound
  ``batch x (1 + negatives) x (1 + T)^layers``.
- Activations, measured directly: one more step after the peak with autograd's saved-tensor hooks, summing the
  storages its forward pass keeps for the backward pass (each once; parameters and buffers, the graph, left out).
  PinSage's should follow its sampled rows. LightGCN's is next to nothing: its propagation is linear with a
  hand-written backward that keeps only the adjacency, so its step's memory lies in whole-graph tensors instead.
- Seconds per step: the steps after the first, on ``--threads`` threads (the machine is shared, so the figure is
  only indicative).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import peak_rss_mib, print_table, run_isolated, write_results  # noqa: E402
from bench.depth import load_dataset  # noqa: E402
from gnnrec.models.base import GraphData, PairBatch  # noqa: E402
from gnnrec.models.registry import build_model, resolve_config, resolve_recipe  # noqa: E402
from gnnrec.tasks.learn.train import EpochContext, deterministic_kernels, seed_everything  # noqa: E402

CPU = torch.device("cpu")
MIB = 1024 * 1024


def resident_mib() -> float:
    """This process's resident set size now (``VmRSS``), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def reset_peak_rss() -> None:
    """Set the kernel's peak-RSS mark (``VmHWM``, what ``ru_maxrss`` reports) back to the current RSS."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")


def release_freed_heap() -> None:
    """Hand memory that Python and glibc freed but kept back to the kernel, so the baseline holds only live data."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def user_share_subgraph(graph: GraphData, share: float, seed: int = 0) -> GraphData:
    """A seeded ``share`` of the users with all their interactions; users and items renumbered densely."""
    rng = np.random.default_rng(seed)
    kept_users = np.sort(rng.choice(graph.num_users, size=round(share * graph.num_users), replace=False))
    keep = np.isin(graph.train_users, kept_users)
    users, items = graph.train_users[keep], graph.train_items[keep]
    kept_items = np.unique(items)
    return GraphData(len(kept_users), len(kept_items), np.searchsorted(kept_users, users),
                     np.searchsorted(kept_items, items))


def disjoint_copies(graph: GraphData, copies: int) -> GraphData:
    """``copies`` disjoint copies of ``graph`` side by side: a bigger graph with the same degrees."""
    return GraphData(
        graph.num_users * copies, graph.num_items * copies,
        np.concatenate([graph.train_users + c * graph.num_users for c in range(copies)]),
        np.concatenate([graph.train_items + c * graph.num_items for c in range(copies)]),
    )


def graph_at_scale(gowalla: GraphData, scale: float) -> GraphData:
    if scale < 1:
        return user_share_subgraph(gowalla, scale)
    if scale != int(scale):
        raise ValueError(f"a scale above 1 must be a whole number of copies, got {scale}")
    return disjoint_copies(gowalla, int(scale)) if scale > 1 else gowalla


def tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def storages(tensor: torch.Tensor) -> list[torch.UntypedStorage]:
    """The storages behind ``tensor``: its own, or a sparse tensor's index and value arrays."""
    if tensor.layout == torch.sparse_csr:
        parts = [tensor.crow_indices(), tensor.col_indices(), tensor.values()]
    elif tensor.layout == torch.sparse_coo:
        parts = [tensor._indices(), tensor._values()]
    else:
        parts = [tensor]
    return [part.untyped_storage() for part in parts]


def saved_for_backward_bytes(model: torch.nn.Module, context: EpochContext, batch: PairBatch) -> int:
    """Bytes autograd keeps from one step's forward pass for its backward pass, each storage counted once, the
    model's parameters and buffers (the graph) left out: the step's activations, measured rather than inferred from
    the process's RSS, which also holds gradients, optimiser state and the allocator's slack."""
    held = {storage.data_ptr() for t in itertools.chain(model.parameters(), model.buffers()) for storage in storages(t)}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        for storage in storages(tensor):
            if storage.data_ptr() not in held:
                saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        context.step(batch)
    return sum(saved.values())


def measure_training(name: str, graph: GraphData, steps: int, threads: int, batch_size: int | None) -> dict[str, Any]:
    """Runs in a fresh process: build ``name`` for ``graph`` and train ``steps`` steps of ``batch_size`` pairs (the
    recipe's when None); memory and time figures."""
    torch.set_num_threads(threads)
    config = resolve_config(name)
    recipe = resolve_recipe(name)
    if batch_size is not None:
        recipe = dataclasses.replace(recipe, batch_size=batch_size)
    seed_everything(recipe.seed)
    with deterministic_kernels(CPU):
        model = build_model(name, graph, config, CPU)
        model.train()
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
        # The recipe's batch size, unshrunk, so every graph size trains on the same batch.
        context = EpochContext(model, graph, recipe, CPU, np.random.default_rng(recipe.seed), optimizer,
                               recipe.batch_size)
        # One epoch of LightGCN's 32,768-pair batches on the smallest graph is fewer than `steps`: run on into more.
        batches = itertools.chain.from_iterable(context.batches(PairBatch) for _ in itertools.count())
        input_rows: list[int] = []
        if name == "pinsage":
            # embed_items calls item_features once per step, on the deepest layer of the batch's neighbourhood.
            model.item_features.register_forward_hook(lambda module, inputs, output: input_rows.append(inputs[0].numel()))
        process_peak_before = peak_rss_mib()
        release_freed_heap()
        built = resident_mib()
        # The first batch sets the epoch up: its visiting order and the negative sampler's table, both over all edges.
        first_batch = next(batches)
        release_freed_heap()
        baseline = resident_mib()
        reset_peak_rss()
        context.step(first_batch)  # counted in the peak (Adam's moments appear here), not in the time
        started = time.perf_counter()
        for _ in range(steps - 1):
            context.step(next(batches))
        seconds = (time.perf_counter() - started) / max(steps - 1, 1)
        training_peak = peak_rss_mib()
        saved_for_backward = saved_for_backward_bytes(model, context, next(batches))  # one more step, after the peak
    parameters = tensor_bytes(model.parameters())
    figures: dict[str, Any] = {
        "model": name, "users": graph.num_users, "items": graph.num_items, "interactions": len(graph.train_users),
        "batch_size": recipe.batch_size, "negatives": recipe.negatives, "negative_sampling": recipe.negative_sampling,
        "steps": steps, "threads": threads,
        "built_rss_mib": round(built, 1),
        "epoch_setup_mib": round(baseline - built, 1),
        "baseline_rss_mib": round(baseline, 1),
        "training_peak_rss_mib": round(training_peak, 1),
        "step_increment_mib": round(training_peak - baseline, 1),
        "training_increment_mib": round(training_peak - built, 1),
        "load_and_build_peak_rss_mib": round(process_peak_before, 1),
        "seconds_per_step": round(seconds, 3),
        "parameter_mib": round(parameters / MIB, 1),
        "gradients_and_adam_mib": round(3 * parameters / MIB, 1),
        "step_increment_beyond_gradients_and_adam_mib": round(training_peak - baseline - 3 * parameters / MIB, 1),
        "graph_tensors_mib": round(tensor_bytes(model.buffers()) / MIB, 1),
        "saved_for_backward_mib": round(saved_for_backward / MIB, 1),
    }
    if name == "pinsage":
        figures["sampled_input_rows_per_step"] = round(float(np.mean(input_rows)))
        figures["sampled_input_rows_bound"] = (recipe.batch_size * (1 + recipe.negatives)
                                               * (1 + config.num_neighbors) ** config.num_layers)
        figures["sampled_share_of_items"] = round(float(np.mean(input_rows)) / graph.num_items, 3)
    else:
        figures["rows_per_layer"] = graph.num_users + graph.num_items
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--scales", default="0.1,0.5,1,2",
                        help="graph sizes: below 1 a share of Gowalla's users, above 1 that many disjoint copies")
    parser.add_argument("--models", default="lightgcn,pinsage")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--batch-size", type=int, help="pairs per step for every model (default: each recipe's)")
    parser.add_argument("--name", default="pinsage-memory", help="results file name under bench/results")
    args = parser.parse_args()
    gowalla, _, _ = load_dataset("gowalla")
    rows: list[dict[str, Any]] = []
    for scale in (float(s) for s in args.scales.split(",")):
        graph = graph_at_scale(gowalla, scale)
        for name in args.models.split(","):
            figures, _, _ = run_isolated(measure_training, name, graph, args.steps, args.threads, args.batch_size)
            figures = {"scale": scale, **figures}
            rows.append(figures)
            print(f"{name} x{scale:g}: " + ", ".join(f"{k} {v}" for k, v in figures.items() if k not in ("model", "scale")),
                  flush=True)
    write_results(args.name, {"dataset": "gowalla train.txt", "measurements": rows})
    print_table("training memory on Gowalla: step increment = peak RSS over the steps - RSS with the epoch set up", [
        (f"{row['model']} x{row['scale']:g} ({row['users']:,} users, {row['items']:,} items, "
         f"{row['interactions']:,} edges)",
         f"steps +{row['step_increment_mib']:.0f} MiB over {row['baseline_rss_mib']:.0f} (gradients + Adam "
         f"{row['gradients_and_adam_mib']:.0f}), epoch set-up +{row['epoch_setup_mib']:.0f}, graph tensors "
         f"{row['graph_tensors_mib']:.0f}, "
         f"{row['seconds_per_step']:.2f} s/step, activations saved for backward {row['saved_for_backward_mib']:.0f}"
         + (f", {row['sampled_input_rows_per_step']:,} sampled rows ({row['sampled_share_of_items']:.0%} of items)"
            if row["model"] == "pinsage" else ""))
        for row in rows
    ])


if __name__ == "__main__":
    main()
