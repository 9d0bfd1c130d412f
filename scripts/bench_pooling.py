"""Time every social pooling variant, forward and backward, on a large sparse sensor graph.

Usage: python scripts/bench_pooling.py [--nodes 20000] [--neighbours 8] [--batch 4] [--steps 12]
       [--dim 32] [--repeats 5] [--device cpu|cuda]

The graph is a corridor ring where each node pools its ``neighbours`` nearest sensors on both
sides (500 m spacing), so E = neighbours * N; time and memory should grow with E, never N^2.
"""

from __future__ import annotations

import argparse
import time

import torch
from benchreport import Table, add_doc_option

from social_xlstm.nn.pooling import POOLING_KINDS, make_pooling


def corridor_graph(num_nodes: int, neighbours: int, spacing_m: float = 500.0):
    node = torch.arange(num_nodes)
    offsets = [o for k in range(1, neighbours // 2 + 1) for o in (-k, k)]
    src = torch.cat([(node + o) % num_nodes for o in offsets])
    dst = node.repeat(len(offsets))
    distance = torch.cat([torch.full((num_nodes,), abs(o) * spacing_m) for o in offsets])
    upstream = torch.cat([torch.full((num_nodes,), -1 if o > 0 else 1) for o in offsets])
    return torch.stack([src, dst]), distance, upstream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--neighbours", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_doc_option(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    edge_index, distance, upstream = (t.to(device) for t in corridor_graph(args.nodes, args.neighbours))
    h = torch.randn(args.batch, args.steps, args.nodes, args.dim, device=device, requires_grad=True)
    table = Table(f"bench_pooling-{device.type}", f"Social pooling variants on {device.type.upper()}",
                  ["kind", "N", "E", "h", "fwd+bwd ms", "peak CUDA MiB"], right_aligned=2)
    for kind in POOLING_KINDS:
        module = make_pooling(kind, args.dim).to(device)

        def run():
            context = module(h, edge_index, distance, upstream=upstream)
            if context.requires_grad:  # "none" has nothing to differentiate
                context.sum().backward()

        run()  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(args.repeats):
            run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed_ms = (time.perf_counter() - start) / args.repeats * 1e3
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
        table.add(kind, args.nodes, edge_index.shape[1], "x".join(map(str, h.shape)), f"{elapsed_ms:.1f}", f"{peak:.0f}" if device.type == "cuda" else "n/a")
    if not args.no_doc:
        table.write("Graph: a corridor ring, each node pooling its nearest neighbours on both sides (E = neighbours x N).")


if __name__ == "__main__":
    main()
