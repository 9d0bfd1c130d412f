"""Social pooling over a sensor graph: what each VD learns from its neighbours' hidden states.

This is the Social-LSTM idea (Alahi et al., CVPR 2016) moved from a pedestrian grid to a road
sensor graph. Every variant reads hidden states ``h [..., N, D]`` (any leading dims, e.g.
``[B, T]`` so one call pools every time step) and a graph in torch-geometric convention:
``edge_index [2, E]`` with row 0 the source neighbour and row 1 the target that pools, plus per
edge ``distance_m [E]`` (metres), and optionally ``upstream [E]`` (+1 source is upstream of the
target, -1 downstream, 0 unknown or another carriageway) and ``bearing [E]``
(degrees clockwise from north, from the target towards its neighbour).

Neighbour states are gathered per edge and reduced per target with torch-geometric's
``scatter`` and our ``group_softmax`` (exact under ONNX export too) along the node axis: O(E) time
and memory, never a Python loop over nodes or edges. A node without incoming edges gets zeros.
The one exception is attention on a small, dense graph (Los-loop: 207 VDs, 13 neighbours each),
where a masked N x N attention in fused matrix products beats per-edge gathers; it gives the
same result (see AttentionPooling).

Every module exposes ``out_dim`` so the model sizes its next layer from it and concatenates
``[own state | context]`` unconditionally: ``"none"`` is a module returning zeros of
``out_dim`` (``dim`` by default, so the ablation changes nothing but the pooling; pass
``out_dim=0`` for a context of width zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter

POOLING_KINDS = ("none", "mean", "idw", "attention", "grid")
# how a sum over a graph is computed, never what (attention here, neighbour_readings too)
LAYOUTS = ("auto", "sparse", "dense")
# "auto" takes the dense layout when N^2 * heads <= DENSE_COST_RATIO * E * out_dim: a dense score
# costs about half of a per-edge element (scripts/bench_pooling.py --layouts; docs/benchmarks.md,
# "Attention pooling layouts"). Neighbour readings have a threshold of their own (a cheaper op).
DENSE_COST_RATIO = 2.5
DENSE_MAX_NODES = 4096  # beyond this the N x N scores outgrow memory whatever the density

# Relative position of a neighbour along the road, read from the upstream sign of its edge.
SIDE_UPSTREAM, SIDE_DOWNSTREAM, SIDE_OTHER = 0, 1, 2
NUM_ROAD_SIDES = 3


def group_max(src: Tensor, index: Tensor, num_groups: int, dim: int = 0) -> Tensor:
    """Max of ``src`` over the entries of each group along ``dim``; -inf for a group without any.

    torch-geometric's max starts every group at 0 under ONNX export (``include_self=False`` has
    no ONNX form), so a group whose entries all lay far below zero exported a max of 0, and a
    softmax shifted by it underflowed to 0 / 0. Starting from -inf is right in both.
    """
    dim = dim % src.dim()
    shape = [num_groups if d == dim else size for d, size in enumerate(src.shape)]
    index = index.view([-1 if d == dim else 1 for d in range(src.dim())]).expand_as(src)
    return src.new_full(shape, -math.inf).scatter_reduce(dim, index, src, "amax", include_self=True)


def group_softmax(src: Tensor, index: Tensor, num_groups: int, dim: int = 0) -> Tensor:
    """Softmax of ``src`` over the entries of each group along ``dim`` (torch-geometric's
    ``softmax``, shifted by ``group_max`` so that it exports exactly)."""
    shifted = (src - group_max(src.detach(), index, num_groups, dim).index_select(dim, index)).exp()
    return shifted / scatter(shifted, index, dim=dim, dim_size=num_groups, reduce="sum").index_select(dim, index)


def road_side(upstream: Tensor) -> Tensor:
    """Per edge 0 = upstream, 1 = downstream, 2 = unknown, from the sign per edge."""
    sign = upstream.float()
    other = torch.full(sign.shape, SIDE_OTHER, dtype=torch.long, device=sign.device)
    return torch.where(sign > 0, SIDE_UPSTREAM, torch.where(sign < 0, SIDE_DOWNSTREAM, other))


class SocialPooling(nn.Module):
    """Common interface: ``forward(h, edge_index, distance_m, upstream=None, bearing=None)``."""

    out_dim: int

    @staticmethod
    def _endpoints(h: Tensor, edge_index: Tensor, distance_m: Tensor) -> tuple[Tensor, Tensor, int]:
        """Validate the graph against ``h``; return (source, target, number of nodes)."""
        if h.dim() < 2:
            raise ValueError(f"pooling: h must be [..., N, D], got shape {tuple(h.shape)}")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"pooling: edge_index must be [2, E], got shape {tuple(edge_index.shape)}")
        if distance_m.shape != (edge_index.shape[1],):
            raise ValueError(
                f"pooling: distance_m must be [E={edge_index.shape[1]}], got shape {tuple(distance_m.shape)}"
            )
        num_nodes = h.shape[-2]
        tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()  # a range check would sync or bake in
        if not tracing and edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
            raise ValueError(f"pooling: edge_index refers to nodes outside [0, {num_nodes})")
        return edge_index[0], edge_index[1], num_nodes


class NoPooling(SocialPooling):
    """The ablation without neighbours: a context of zeros, ``[..., N, out_dim]``."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.out_dim = out_dim

    def forward(self, h: Tensor, edge_index: Tensor, distance_m: Tensor, upstream=None, bearing=None) -> Tensor:
        self._endpoints(h, edge_index, distance_m)
        return h.new_zeros(*h.shape[:-1], self.out_dim)


class MeanPooling(SocialPooling):
    """Plain mean of the neighbours' states; parameter-free, so ``out_dim == dim``."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, h: Tensor, edge_index: Tensor, distance_m: Tensor, upstream=None, bearing=None) -> Tensor:
        src, dst, num_nodes = self._endpoints(h, edge_index, distance_m)
        return scatter(h.index_select(-2, src), dst, dim=-2, dim_size=num_nodes, reduce="mean")


class InverseDistancePooling(SocialPooling):
    """Mean weighted by ``1 / (d + d0)``, normalised over each target's neighbours.

    ``d0_m`` keeps a co-located neighbour (d = 0) from taking all the weight.
    """

    def __init__(self, dim: int, d0_m: float = 100.0):
        super().__init__()
        if d0_m <= 0:
            raise ValueError(f"InverseDistancePooling: d0_m must be > 0, got {d0_m}")
        self.out_dim = dim
        self.d0_m = float(d0_m)

    def forward(self, h: Tensor, edge_index: Tensor, distance_m: Tensor, upstream=None, bearing=None) -> Tensor:
        src, dst, num_nodes = self._endpoints(h, edge_index, distance_m)
        weight = 1.0 / (distance_m.to(h.dtype) + self.d0_m)
        total = scatter(weight, dst, dim=0, dim_size=num_nodes, reduce="sum")
        weight = weight / total.index_select(0, dst)
        return scatter(h.index_select(-2, src) * weight[:, None], dst, dim=-2, dim_size=num_nodes, reduce="sum")


class DistanceBias(nn.Module):
    """Per-head attention bias as a learned function of distance.

    ``slope * log1p(d / scale) + mlp(log1p(d / scale))``: the slope starts at -1, so a fresh
    model already prefers near neighbours (like inverse distance); the MLP starts at zero and
    learns any other shape (e.g. a bump at the typical spacing of a shock wave).
    """

    def __init__(self, num_heads: int, hidden: int = 16, scale_m: float = 1000.0):
        super().__init__()
        self.scale_m = float(scale_m)
        self.slope = nn.Parameter(torch.full((num_heads,), -1.0))
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, num_heads))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, distance_m: Tensor) -> Tensor:
        log_d = torch.log1p(distance_m.clamp_min(0) / self.scale_m)[:, None]
        return self.slope * log_d + self.mlp(log_d)


class AttentionPooling(SocialPooling):
    """Distance-aware multi-head attention over each target's incoming edges.

    score = (W_q h_dst) . (W_k h_src) / sqrt(d_k) + bias(distance) [+ bias(road side)], a softmax
    over the target's edges, and a weighted sum of values W_v h_src. The road-side bias (one
    learned number per head for upstream / downstream / unknown) applies when ``upstream`` is
    given: congestion travels upstream, so direction matters as much as distance.

    ``layout`` picks how it is computed, never what: ``"sparse"`` gathers every edge (O(E)
    memory, any size); ``"dense"`` scores all N x N pairs with ``scaled_dot_product_attention``
    and the edge biases as an additive mask (-inf off the graph), which on a small dense graph
    is several times faster because the work runs in fused matrix products instead of
    memory-bound gathers; ``"auto"`` (default) chooses from N, E and the width alone, so the
    choice is static under tracing and compiling.
    """

    def __init__(
        self,
        dim: int,
        out_dim: int | None = None,
        num_heads: int = 1,
        key_dim: int | None = None,
        distance_hidden: int = 16,
        distance_scale_m: float = 1000.0,
        layout: str = "auto",
    ):
        super().__init__()
        out_dim = dim if out_dim is None else out_dim
        if num_heads < 1 or out_dim % num_heads:
            raise ValueError(f"AttentionPooling: out_dim {out_dim} must split into num_heads {num_heads}")
        if layout not in LAYOUTS:
            raise ValueError(f"AttentionPooling: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.out_dim, self.num_heads, self.layout = out_dim, num_heads, layout
        self.key_dim = key_dim or max(out_dim // num_heads, 1)
        self.query = nn.Linear(dim, num_heads * self.key_dim, bias=False)
        self.key = nn.Linear(dim, num_heads * self.key_dim, bias=False)
        self.value = nn.Linear(dim, out_dim, bias=False)
        self.distance_bias = DistanceBias(num_heads, distance_hidden, distance_scale_m)
        self.side_bias = nn.Parameter(torch.zeros(NUM_ROAD_SIDES, num_heads))

    def uses_dense(self, num_nodes: int, num_edges: int) -> bool:
        """Whether this call takes the dense layout (see the class docstring)."""
        if self.layout != "auto":
            return self.layout == "dense"
        dense_cost = num_nodes * num_nodes * self.num_heads
        return num_nodes <= DENSE_MAX_NODES and dense_cost <= DENSE_COST_RATIO * num_edges * self.out_dim

    def forward(self, h: Tensor, edge_index: Tensor, distance_m: Tensor, upstream=None, bearing=None) -> Tensor:
        src, dst, num_nodes = self._endpoints(h, edge_index, distance_m)
        bias = self.distance_bias(distance_m.to(h.dtype))
        if upstream is not None:
            bias = bias + self.side_bias[road_side(upstream)]  # [E, heads]
        heads, key_dim = self.num_heads, self.key_dim
        q = self.query(h).unflatten(-1, (heads, key_dim))
        k = self.key(h).unflatten(-1, (heads, key_dim))
        v = self.value(h).unflatten(-1, (heads, -1))
        if self.uses_dense(num_nodes, src.numel()):
            return self._dense(q, k, v, bias, src, dst, num_nodes)
        q, k, v = q.index_select(-3, dst), k.index_select(-3, src), v.index_select(-3, src)
        score = (q * k).sum(-1) / math.sqrt(key_dim) + bias  # [..., E, heads]
        alpha = group_softmax(score, dst, num_nodes, dim=-2)
        out = scatter(alpha[..., None] * v, dst, dim=-3, dim_size=num_nodes, reduce="sum")
        return out.flatten(-2)

    @staticmethod
    def _dense(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
        """The same attention over all node pairs, masked to the graph.

        A pair's mask entry is log(sum of exp(bias) over its edges), so a pair given twice
        weighs twice, exactly as in the per-edge softmax; -inf marks no edge. A target without
        edges gets a zero row in the mask (no -inf-only softmax) and a zero output.
        """
        heads = bias.shape[-1]
        shift = group_max(bias.detach(), dst, num_nodes).index_select(0, dst)
        pair = dst * num_nodes + src  # row = target, column = source
        pair_weight = scatter((bias - shift).exp(), pair, dim=0, dim_size=num_nodes * num_nodes, reduce="sum")
        pair_shift = group_max(shift, pair, num_nodes * num_nodes)  # -inf off the graph, masked below
        is_edge = pair_weight > 0  # the best edge of each target has weight exp(0) = 1
        log_weight = pair_weight.clamp_min(torch.finfo(pair_weight.dtype).tiny).log() + pair_shift
        is_edge, log_weight = (x.T.reshape(heads, num_nodes, num_nodes) for x in (is_edge, log_weight))
        has_edges = is_edge.any(-1, keepdim=True)  # [heads, N, 1]
        mask = torch.where(is_edge, log_weight, torch.where(has_edges, float("-inf"), 0.0)).to(q.dtype)
        out = F.scaled_dot_product_attention(
            q.transpose(-2, -3), k.transpose(-2, -3), v.transpose(-2, -3), attn_mask=mask
        )
        return (out * has_edges).transpose(-2, -3).flatten(-2)


class GridPooling(SocialPooling):
    """Social-LSTM grid: neighbours binned by relative position, summed per bin, mixed linearly.

    A bin is (side, ring). Rings are distance bands split at ``rings_m`` (default [0, 1 km),
    [1, 3 km), [3 km, inf)). Sides come from ``sides``:
    - ``"upstream"`` (default): upstream / downstream / unknown, from the ``upstream`` sign;
    - ``"bearing"``: ``num_sectors`` compass sectors centred on north, from ``bearing``;
    - ``"none"``: a single side (rings only).
    The choice is fixed at construction because the linear map learns one weight block per bin;
    the bins must mean the same thing on every call. The map has no bias, so an isolated node
    gets zeros like in every other variant.
    """

    def __init__(
        self,
        dim: int,
        out_dim: int | None = None,
        rings_m: Sequence[float] = (1000.0, 3000.0),
        sides: str = "upstream",
        num_sectors: int = 4,
    ):
        super().__init__()
        if sides not in ("upstream", "bearing", "none"):
            raise ValueError(f"GridPooling: sides must be 'upstream', 'bearing' or 'none', got {sides!r}")
        if list(rings_m) != sorted(rings_m) or any(r <= 0 for r in rings_m):
            raise ValueError(f"GridPooling: rings_m must be increasing positive distances, got {list(rings_m)}")
        if sides == "bearing" and num_sectors < 1:
            raise ValueError(f"GridPooling: num_sectors must be >= 1, got {num_sectors}")
        self.out_dim = dim if out_dim is None else out_dim
        self.sides = sides
        self.num_sides = {"upstream": NUM_ROAD_SIDES, "bearing": num_sectors, "none": 1}[sides]
        self.rings_m = tuple(float(r) for r in rings_m)
        self.num_rings = len(rings_m) + 1
        self.num_bins = self.num_sides * self.num_rings
        self.mix = nn.Linear(self.num_bins * dim, self.out_dim, bias=False)

    def edge_bins(self, distance_m: Tensor, upstream: Tensor | None, bearing: Tensor | None) -> Tensor:
        """Bin index per edge: side * num_rings + ring."""
        boundaries = torch.tensor(self.rings_m, dtype=torch.float64, device=distance_m.device)
        ring = torch.bucketize(distance_m.to(torch.float64), boundaries, right=True)
        if self.sides == "upstream":
            if upstream is None:
                raise ValueError("GridPooling(sides='upstream') needs the per-edge upstream sign")
            side = road_side(upstream)
        elif self.sides == "bearing":
            if bearing is None:
                raise ValueError("GridPooling(sides='bearing') needs the per-edge bearing")
            width = 360.0 / self.num_sides
            side = torch.floor(torch.remainder(bearing.to(torch.float64) + width / 2, 360.0) / width).long()
            side = side.clamp_max(self.num_sides - 1)
        else:
            side = torch.zeros_like(ring)
        return side * self.num_rings + ring

    def forward(self, h: Tensor, edge_index: Tensor, distance_m: Tensor, upstream=None, bearing=None) -> Tensor:
        src, dst, num_nodes = self._endpoints(h, edge_index, distance_m)
        cell = dst * self.num_bins + self.edge_bins(distance_m, upstream, bearing)
        cells = scatter(h.index_select(-2, src), cell, dim=-2, dim_size=num_nodes * self.num_bins, reduce="sum")
        return self.mix(cells.unflatten(-2, (num_nodes, self.num_bins)).flatten(-2))


def make_pooling(kind: str, dim: int, out_dim: int | None = None, **options) -> SocialPooling:
    """The pooling module named by ``kind`` (one of POOLING_KINDS) for hidden size ``dim``.

    ``out_dim`` is the context width (default ``dim``); "mean" and "idw" have no parameters and
    always give ``dim``. ``options`` go to the module (e.g. num_heads, d0_m, rings_m, sides).
    """
    if kind == "none":
        return NoPooling(dim if out_dim is None else out_dim, **options)
    if kind in ("mean", "idw"):
        if out_dim not in (None, dim):
            raise ValueError(f"pooling '{kind}' has no parameters: its out_dim is dim={dim}, not {out_dim}")
        return MeanPooling(dim, **options) if kind == "mean" else InverseDistancePooling(dim, **options)
    if kind == "attention":
        return AttentionPooling(dim, out_dim, **options)
    if kind == "grid":
        return GridPooling(dim, out_dim, **options)
    raise ValueError(f"unknown pooling kind {kind!r}; expected one of {', '.join(POOLING_KINDS)}")
