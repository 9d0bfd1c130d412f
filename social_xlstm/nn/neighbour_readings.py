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

from .pooling import SIDE_DOWNSTREAM, SIDE_UPSTREAM, road_side

# The neighbour groups whose means a VD receives: upstream, downstream, and every neighbour.
GROUPS = ("upstream", "downstream", "all")


def group_membership(upstream: Tensor) -> Tensor:
    """[E] upstream sign -> [E, len(GROUPS)] 1.0 where the edge belongs to the group."""
    side = road_side(upstream)
    return torch.stack([side == SIDE_UPSTREAM, side == SIDE_DOWNSTREAM, torch.ones_like(side, dtype=torch.bool)], -1).float()


class NeighbourReadings(nn.Module):
    """x, x_mask [..., N, F] and the graph -> [..., N, out_dim] neighbour means and their
    observed shares, ordered hop, group, feature, then mean / share."""

    def __init__(self, num_features: int, hops: int):
        super().__init__()
        if hops < 1:
            raise ValueError(f"NeighbourReadings: hops must be >= 1, got {hops}")
        self.hops = hops
        self.out_dim = 2 * num_features * hops * len(GROUPS)

    def forward(self, x: Tensor, x_mask: Tensor, edge_index: Tensor, upstream: Tensor) -> Tensor:
        src, dst = edge_index[0], edge_index[1]
        num_nodes = x.shape[-2]
        member = group_membership(upstream).to(x.dtype)[:, :, None]  # [E, groups, 1]
        degree = scatter(member, dst, dim=0, dim_size=num_nodes, reduce="sum").clamp_min(1.0)  # [N, groups, 1]
        groups = len(GROUPS)
        value = (x * x_mask)[..., None, :].expand(*x.shape[:-1], groups, x.shape[-1])  # [..., N, groups, F]
        share = x_mask[..., None, :].expand_as(value)
        features = []
        for _ in range(self.hops):
            # one gather and one scatter per hop carry both the weighted values and the weights
            sent = torch.stack([value * share, share], dim=-1).index_select(-4, src) * member[..., None]
            total, observed = scatter(sent, dst, dim=-4, dim_size=num_nodes, reduce="sum").unbind(-1)
            value = torch.where(observed > 0, total / observed.clamp_min(1e-6), torch.zeros_like(total))
            share = observed / degree
            features.append(torch.stack([value, share], dim=-1))  # [..., N, groups, F, 2]
        return torch.stack(features, dim=-4).flatten(-4)  # [..., N, groups * hops * F * 2]
