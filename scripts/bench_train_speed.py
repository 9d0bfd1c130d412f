"""Training throughput: windows per second of Social-xLSTM and of its neural baselines.

Builds every network exactly as `social-xlstm train` does for the given experiment (same
config, data, graph and width), then times full training steps (forward, masked loss,
backward, gradient clipping, AdamW) on real shuffled batches, eager and, with --compile, under
torch.compile (its one-off compile time reported apart). Prints a markdown table.

  python scripts/bench_train_speed.py --experiment los_loop
  python scripts/bench_train_speed.py --experiment demo --steps 20 -- model.hidden=64
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
from benchreport import Table, add_doc_option, add_malloc_option

from social_xlstm.allocator import reuse_freed_memory
from social_xlstm.training.config import compose_config
from social_xlstm.training.module import adamw
from social_xlstm.training.train import ensure_demo_data, make_datamodule, make_graph, make_module, run_info

VARIANTS = {"social_xlstm": None, "lstm": "lstm", "no_pooling": "no_pooling"}


def time_steps(module, batches, steps: int) -> tuple[float, float]:
    """(seconds of the first step, median seconds of the next ``steps``)."""
    optimizer = adamw(module.parameters(), lr=1e-3)  # as training builds it
    module.train()
    durations = []
    for batch in itertools.islice(batches, steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        module.training_loss(batch)[0].backward()
        module.clip_gradient_norms(1.0)  # clipped as training clips
        optimizer.step()
        durations.append(time.perf_counter() - start)
    return durations[0], statistics.median(durations[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="los_loop")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per network (after one warm-up)")
    parser.add_argument("--compile", action="store_true", help="also time each network under torch.compile")
    add_malloc_option(parser)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    add_doc_option(parser)
    args = parser.parse_args()
    if not args.default_malloc:
        reuse_freed_memory()  # as `social-xlstm train` does

    cfg = compose_config([f"experiment={args.experiment}", *args.overrides])
    ensure_demo_data(cfg)
    datamodule = make_datamodule(cfg)
    datamodule.setup()
    graph = make_graph(cfg, datamodule)
    batch_size, sensors, members = int(cfg.data.batch_size), len(datamodule.sensor_ids), int(cfg.model.members)
    windows = batch_size * members  # an ensemble's step holds one batch per member
    table = Table(
        "bench_train_speed" + ("-default-malloc" if args.default_malloc else ""),
        f"Training throughput: {args.experiment}, {sensors} sensors, batch {batch_size}"
        + (f" per member x {members} members" if members > 1 else "")
        + f", width {cfg.model.hidden}, {cfg.data.input_len} steps in"
        + (", glibc default malloc" if args.default_malloc else ""),
        ["network", "mode", "step (ms)", "windows/s", "VD sequences/s", "first step (s)"],
        right_aligned=4,
    )
    modes = ["eager", "compiled"] if args.compile else ["eager"]
    for (name, variant), mode in itertools.product(VARIANTS.items(), modes):
        torch.manual_seed(0)
        cfg.trainer.compile = mode == "compiled"
        module = make_module(cfg, run_info(datamodule), graph, variant)
        first, step = time_steps(module, iter(datamodule.train_dataloader()), args.steps)
        table.add(
            name,
            mode,
            f"{step * 1000:.0f}",
            f"{windows / step:.1f}",
            f"{windows * sensors / step:.0f}",
            f"{first:.1f}",
        )
    if not args.no_doc:
        table.write(
            "One step = forward, masked loss, backward, clipping and AdamW on one batch of real windows; "
            "the median over the timed steps. 'first step' includes compiling."
        )


if __name__ == "__main__":
    main()
