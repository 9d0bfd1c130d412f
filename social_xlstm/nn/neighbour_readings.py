"""Neighbours' raw readings as extra encoder inputs: social pooling before the encoder.

Pooling hidden states (``pooling.py``) lets each VD read what its neighbours' encoders made
of their histories. This module adds the other half, early fusion as in diffusion-convolution
forecasters (DCRNN, Li et al. ICLR 2018): at every time step each VD also receives the mean
reading of its upstream neighbours, of its downstream neighbours and of all its neighbours,
over 1..``hops`` hops, so its own recurrence sees a slowdown travel towards it.

Missing readings never count as zeros. A hop's mean is weighted by how much of the previous
hop was observed, and each mean comes with that observed share as a second input, so "no
upstream data" differs from "upstream speed 0". Parameter-free and per time step, so the
streaming ``step`` computes exactly what the windowed pass does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from .pooling import LAYOUTS, SIDE_DOWNSTREAM, SIDE_UPSTREAM, road_side

# The neighbour groups whose means a VD receives: upstream, downstream, and every neighbour.
GROUPS = ("upstream", "downstream", "all")
# "auto" sums over a dense [groups, N, N] operator when N^2 <= DENSE_COST_RATIO * E. A threshold of
# its own, far above attention pooling's: a dense mean is one matrix product per group, much
# cheaper per pair than an attention score, so it pays off on much sparser graphs (measured with
# scripts/bench_pooling.py; docs/benchmarks.md).
DENSE_COST_RATIO = 128
DENSE_MAX_NODES = 2048  # beyond this the operator alone outgrows what a sum over edges needs


def group_membership(upstream: Tensor) -> Tensor:
    """[E] upstream sign -> [E, len(GROUPS)] 1.0 where the edge belongs to the group."""
    side = road_side(upstream)
    return torch.stack(
        [side == SIDE_UPSTREAM, side == SIDE_DOWNSTREAM, torch.ones_like(side, dtype=torch.bool)], -1
    ).float()


class NeighbourReadings(nn.Module):
    """x, x_mask [..., N, F] and the graph -> [..., N, out_dim] neighbour means and their
    observed shares, ordered hop, group, feature, then mean / share.

    Every hop is one linear sum over each group's incoming edges for all leading positions at
    once, in a node-major layout [groups, N, everything else]. ``layout`` picks how that sum is
    computed, never what: ``"sparse"`` gathers and scatters every edge (O(E)); ``"dense"``
    multiplies by the [groups, N, N] edge-count matrix, which on a small, dense graph runs as one
    matrix product instead of memory-bound gathers (and, baked into an export, as a constant);
    ``"auto"`` chooses from N and E alone, so the choice is static under tracing.
    """

    def __init__(self, num_features: int, hops: int, layout: str = "auto"):
        super().__init__()
        if hops < 1:
            raise ValueError(f"NeighbourReadings: hops must be >= 1, got {hops}")
        if layout not in LAYOUTS:
            raise ValueError(f"NeighbourReadings: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.hops, self.layout = hops, layout
        self.out_dim = 2 * num_features * hops * len(GROUPS)

    def uses_dense(self, num_nodes: int, num_edges: int) -> bool:
        if self.layout != "auto":
            return self.layout == "dense"
        return num_nodes <= DENSE_MAX_NODES and num_nodes * num_nodes <= DENSE_COST_RATIO * num_edges

    def forward(self, x: Tensor, x_mask: Tensor, edge_index: Tensor, upstream: Tensor) -> Tensor:
        *lead, num_nodes, num_features = x.shape
        groups = len(GROUPS)
        src, dst = edge_index[0], edge_index[1]
        member = group_membership(upstream).to(x.dtype)  # [E, groups]
        if self.uses_dense(num_nodes, src.numel()):
            # edge counts per (target, source) pair and group; a pair given twice counts twice
            pairs = scatter(member, dst * num_nodes + src, dim=0, dim_size=num_nodes * num_nodes, reduce="sum")
            operator = pairs.T.reshape(groups, num_nodes, num_nodes)
            degree = operator.sum(-1, keepdim=True)

            def neighbour_sum(sent: Tensor) -> Tensor:
                return operator @ sent
        else:
            weight = member.T[:, :, None]  # [groups, E, 1]
            degree = scatter(weight, dst, dim=1, dim_size=num_nodes, reduce="sum")

            def neighbour_sum(sent: Tensor) -> Tensor:
                return scatter(sent.index_select(1, src) * weight, dst, dim=1, dim_size=num_nodes, reduce="sum")

        degree = degree.clamp_min(1.0)  # [groups, N, 1]

        def node_major(a: Tensor) -> Tensor:  # [..., N, F] -> [groups, N, L * F]
            return a.movedim(a.dim() - 2, 0).reshape(1, num_nodes, -1).expand(groups, -1, -1)  # ONNX: no negative perm

        value, share = node_major(x * x_mask), node_major(x_mask.to(x.dtype))
        features = []
        for _ in range(self.hops):
            # one sum per hop carries both the weighted values and the weights
            total, observed = neighbour_sum(torch.cat([value * share, share], dim=-1)).chunk(2, dim=-1)
            value = torch.where(observed > 0, total / observed.clamp_min(1e-6), 0.0)
            share = observed / degree
            features.append(torch.stack([value, share], dim=-1))  # [groups, N, L * F, 2]
        out = torch.stack(features).unflatten(-2, (-1, num_features))  # [hops, groups, N, L, F, 2]
        out = out.permute(3, 2, 0, 1, 4, 5)  # [L, N, hops, groups, F, 2]
        return out.reshape(*lead, num_nodes, self.out_dim)
