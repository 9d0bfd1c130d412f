"""Time every social pooling variant, forward and backward, on a large sparse sensor graph.

Usage: python scripts/bench_pooling.py [--nodes 20000] [--neighbours 8] [--batch 4] [--steps 12]
       [--dim 32] [--repeats 5] [--device cpu|cuda]
       python scripts/bench_pooling.py --layouts   (attention: per-edge vs dense layout)

The graph is a corridor ring where each node pools its ``neighbours`` nearest sensors on both
sides (500 m spacing), so E = neighbours * N; time and memory should grow with E, never N^2.
``--layouts`` times attention pooling's two layouts on graphs from Los-loop's size and density
to sparser and bigger ones; the cost ratio N^2 * heads / (E * width) is what its "auto" layout
compares with DENSE_COST_RATIO.
"""

from __future__ import annotations

import argparse
import time

import torch
from benchreport import Table, add_doc_option

from social_xlstm.nn.pooling import DENSE_COST_RATIO, POOLING_KINDS, make_pooling

# (nodes, neighbours per node, windows x steps, heads): Los-loop (207 VDs, 12.7 neighbours, a
# batch of 32 x 12 steps) with 1 and 4 heads, then sparser and bigger graphs.
LAYOUT_CASES = [
    (207, 12.7, 384, 1),
    (207, 12.7, 384, 4),
    (207, 4.8, 384, 1),
    (500, 8, 96, 1),
    (1000, 8, 48, 1),
    (1000, 30, 48, 1),
]


def corridor_graph(num_nodes: int, neighbours: int, spacing_m: float = 500.0):
    node = torch.arange(num_nodes)
    offsets = [o for k in range(1, neighbours // 2 + 1) for o in (-k, k)]
    src = torch.cat([(node + o) % num_nodes for o in offsets])
    dst = node.repeat(len(offsets))
    distance = torch.cat([torch.full((num_nodes,), abs(o) * spacing_m) for o in offsets])
    upstream = torch.cat([torch.full((num_nodes,), -1 if o > 0 else 1) for o in offsets])
    return torch.stack([src, dst]), distance, upstream


def fwd_bwd_ms(module, h, edge_index, distance, upstream, repeats: int, device) -> float:
    """Mean milliseconds of one forward and backward pass, after a warm-up."""

    def run():
        context = module(h, edge_index, distance, upstream=upstream)
        if context.requires_grad:  # "none" has nothing to differentiate
            context.sum().backward()

    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def compare_layouts(args, device) -> None:
    """Attention pooling, per-edge vs dense, on random graphs of LAYOUT_CASES."""
    table = Table(
        f"bench_pooling_layouts-{device.type}",
        f"Attention pooling layouts on {device.type.upper()}",
        [
            "N",
            "E",
            "windows x steps",
            "heads",
            "N^2 heads / (E width)",
            "auto picks",
            "sparse ms",
            "dense ms",
            "dense / sparse",
        ],
        right_aligned=4,
    )
    generator = torch.Generator().manual_seed(0)
    for nodes, neighbours, rows, heads in LAYOUT_CASES:
        num_edges = round(nodes * neighbours)
        edge_index = torch.randint(0, nodes, (2, num_edges), generator=generator).to(device)
        distance = (torch.rand(num_edges, generator=generator) * 5000).to(device)
        upstream = torch.randint(-1, 2, (num_edges,), generator=generator).to(device)
        h = torch.randn(rows, nodes, args.dim, device=device, requires_grad=True)
        ms = {}
        for layout in ("sparse", "dense"):
            module = make_pooling("attention", args.dim, num_heads=heads, layout=layout).to(device)
            ms[layout] = fwd_bwd_ms(module, h, edge_index, distance, upstream, args.repeats, device)
        auto = (
            "dense" if make_pooling("attention", args.dim, num_heads=heads).uses_dense(nodes, num_edges) else "sparse"
        )
        ratio = nodes * nodes * heads / (num_edges * args.dim)
        table.add(
            nodes,
            num_edges,
            rows,
            heads,
            f"{ratio:.2f}",
            auto,
            f"{ms['sparse']:.0f}",
            f"{ms['dense']:.0f}",
            f"{ms['dense'] / ms['sparse']:.2f}",
        )
    if not args.no_doc:
        table.write(
            f'Random graphs, width {args.dim}, forward + backward. "auto" takes the dense layout when the '
            f"ratio is at most DENSE_COST_RATIO = {DENSE_COST_RATIO}."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--neighbours", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layouts", action="store_true", help="compare attention pooling's per-edge and dense layouts")
    add_doc_option(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.layouts:
        compare_layouts(args, device)
        return
    edge_index, distance, upstream = (t.to(device) for t in corridor_graph(args.nodes, args.neighbours))
    h = torch.randn(args.batch, args.steps, args.nodes, args.dim, device=device, requires_grad=True)
    table = Table(
        f"bench_pooling-{device.type}",
        f"Social pooling variants on {device.type.upper()}",
        ["kind", "N", "E", "h", "fwd+bwd ms", "peak CUDA MiB"],
        right_aligned=2,
    )
    for kind in POOLING_KINDS:
        module = make_pooling(kind, args.dim).to(device)
        elapsed_ms = fwd_bwd_ms(module, h, edge_index, distance, upstream, args.repeats, device)
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
        table.add(
            kind,
            args.nodes,
            edge_index.shape[1],
            "x".join(map(str, h.shape)),
            f"{elapsed_ms:.1f}",
            f"{peak:.0f}" if device.type == "cuda" else "n/a",
        )
    if not args.no_doc:
        table.write(
            "Graph: a corridor ring, each node pooling its nearest neighbours on both sides (E = neighbours x N)."
        )


if __name__ == "__main__":
    main()
