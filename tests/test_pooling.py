"""Social pooling: every variant against a per-node Python loop, plus the graph-level properties."""

import math

import pytest
import torch
import torch.nn.functional as F

from social_xlstm.nn.pooling import POOLING_KINDS, GridPooling, make_pooling

N, D, ISOLATED = 7, 6, 6


def random_graph(seed: int = 0, num_edges: int = 20):
    """A random directed graph on N nodes; node ISOLATED has no incoming edge (it is a source only)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, N, (num_edges,), generator=g)
    dst = torch.randint(0, N - 1, (num_edges,), generator=g)
    src[0] = ISOLATED
    distance = torch.rand(num_edges, generator=g, dtype=torch.float64) * 5000.0
    distance[1], distance[2] = 1000.0, 0.0  # on a ring boundary, and co-located
    upstream = torch.randint(-1, 2, (num_edges,), generator=g)
    bearing = torch.rand(num_edges, generator=g, dtype=torch.float64) * 360.0
    return torch.stack([src, dst]), distance, upstream, bearing


def randomised(module):
    """The module in float64 with every parameter random (zero-initialised ones included)."""
    module = module.double()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


# ----- brute-force references: one target node at a time, one edge at a time -----


def incoming(edge_index, node):
    return [e for e in range(edge_index.shape[1]) if int(edge_index[1, e]) == node]


def mean_reference(module, h, edge_index, distance, upstream, bearing):
    out = torch.zeros(N, D, dtype=h.dtype)
    for i in range(N):
        edges = incoming(edge_index, i)
        if edges:
            out[i] = sum(h[int(edge_index[0, e])] for e in edges) / len(edges)
    return out


def idw_reference(module, h, edge_index, distance, upstream, bearing):
    out = torch.zeros(N, D, dtype=h.dtype)
    for i in range(N):
        edges = incoming(edge_index, i)
        weights = [1.0 / (float(distance[e]) + module.d0_m) for e in edges]
        for e, w in zip(edges, weights):
            out[i] += w / sum(weights) * h[int(edge_index[0, e])]
    return out


def attention_reference(module, h, edge_index, distance, upstream, bearing):
    heads, dk = module.num_heads, module.key_dim
    wq, wk, wv = module.query.weight, module.key.weight, module.value.weight
    dv = module.out_dim // heads
    mlp_in, mlp_out = module.distance_bias.mlp[0], module.distance_bias.mlp[2]
    out = torch.zeros(N, module.out_dim, dtype=h.dtype)
    for i in range(N):
        edges = incoming(edge_index, i)
        for head in range(heads):
            q = wq[head * dk : (head + 1) * dk] @ h[i]
            scores, values = [], []
            for e in edges:
                j = int(edge_index[0, e])
                x = math.log1p(float(distance[e]) / 1000.0)
                hidden = F.silu(mlp_in.weight[:, 0] * x + mlp_in.bias)
                bias = module.distance_bias.slope[head] * x + mlp_out.weight[head] @ hidden + mlp_out.bias[head]
                side = {1: 0, -1: 1, 0: 2}[int(upstream[e])]
                bias = bias + module.side_bias[side, head]
                scores.append((q @ (wk[head * dk : (head + 1) * dk] @ h[j])) / math.sqrt(dk) + bias)
                values.append(wv[head * dv : (head + 1) * dv] @ h[j])
            if edges:
                alpha = torch.softmax(torch.stack(scores), 0)
                out[i, head * dv : (head + 1) * dv] = sum(a * v for a, v in zip(alpha, values))
    return out


def grid_reference(module, h, edge_index, distance, upstream, bearing):
    out = torch.zeros(N, module.out_dim, dtype=h.dtype)
    for i in range(N):
        cells = torch.zeros(module.num_bins, D, dtype=h.dtype)
        for e in incoming(edge_index, i):
            d = float(distance[e])
            ring = 0 if d < 1000.0 else 1 if d < 3000.0 else 2
            if module.sides == "upstream":
                side = {1: 0, -1: 1, 0: 2}[int(upstream[e])]
            else:  # four compass sectors centred on N, E, S, W
                side = int(((float(bearing[e]) + 45.0) % 360.0) // 90.0)
            cells[side * 3 + ring] += h[int(edge_index[0, e])]
        if incoming(edge_index, i):
            out[i] = module.mix.weight @ cells.flatten()
    return out


CASES = {
    "mean": (lambda: make_pooling("mean", D), mean_reference),
    "idw": (lambda: make_pooling("idw", D, d0_m=50.0), idw_reference),
    "attention-sparse": (
        lambda: make_pooling("attention", D, out_dim=4, num_heads=2, key_dim=3, layout="sparse"),
        attention_reference,
    ),
    "attention-dense": (
        lambda: make_pooling("attention", D, out_dim=4, num_heads=2, key_dim=3, layout="dense"),
        attention_reference,
    ),
    "grid-upstream": (lambda: make_pooling("grid", D, out_dim=5), grid_reference),
    "grid-bearing": (lambda: make_pooling("grid", D, out_dim=5, sides="bearing", num_sectors=4), grid_reference),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_per_node_loop_with_leading_dims(case):
    build, reference = CASES[case]
    module = randomised(build())
    edge_index, distance, upstream, bearing = random_graph()
    h = torch.randn(2, 3, N, D, dtype=torch.float64)
    out = module(h, edge_index, distance, upstream=upstream, bearing=bearing)
    assert out.shape == (2, 3, N, module.out_dim)
    for b in range(2):
        for t in range(3):
            expected = reference(module, h[b, t], edge_index, distance, upstream, bearing)
            torch.testing.assert_close(out[b, t], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", POOLING_KINDS)
def test_isolated_node_gets_zeros_and_width_is_out_dim(kind):
    module = make_pooling(kind, D)
    edge_index, distance, upstream, bearing = random_graph()
    out = module(torch.randn(4, N, D), edge_index, distance.float(), upstream=upstream, bearing=bearing)
    assert out.shape == (4, N, module.out_dim)
    assert torch.count_nonzero(out[:, ISOLATED]) == 0
    if kind != "none":
        assert torch.count_nonzero(out[:, :ISOLATED]) > 0


def test_none_is_zero_context_of_any_width():
    edge_index, distance, _, _ = random_graph()
    h = torch.randn(2, N, D)
    assert torch.equal(make_pooling("none", D)(h, edge_index, distance), torch.zeros(2, N, D))
    assert make_pooling("none", D, out_dim=0)(h, edge_index, distance).shape == (2, N, 0)


def test_empty_graph_gives_zeros():
    h = torch.randn(3, N, D)
    empty = torch.zeros(2, 0, dtype=torch.long)
    for kind in POOLING_KINDS:
        module = make_pooling(kind, D, **({"sides": "none"} if kind == "grid" else {}))
        assert torch.count_nonzero(module(h, empty, torch.zeros(0))) == 0
    assert torch.count_nonzero(make_pooling("attention", D, layout="dense")(h, empty, torch.zeros(0))) == 0


GRADIENT_CASES = {
    "attention-sparse": {"kind": "attention", "num_heads": 1, "layout": "sparse"},
    "attention-dense": {"kind": "attention", "num_heads": 1, "layout": "dense"},
    "idw": {"kind": "idw"},
    "grid": {"kind": "grid"},
}


@pytest.mark.parametrize("case", ["attention-sparse", "attention-dense", "idw"])
def test_gradcheck(case):
    module = randomised(make_pooling(dim=3, **GRADIENT_CASES[case]))
    edge_index = torch.tensor([[0, 2, 3, 1, 0], [1, 1, 1, 2, 2]])
    h = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    distance = torch.tensor([300.0, 1200.0, 40.0, 800.0, 2500.0], dtype=torch.float64, requires_grad=True)
    upstream = torch.tensor([1, -1, 0, 1, -1])
    assert torch.autograd.gradcheck(lambda x, d: module(x, edge_index, d, upstream=upstream), (h, distance))


@pytest.mark.parametrize("case", ["attention-sparse", "attention-dense", "grid"])
def test_every_parameter_gets_a_gradient(case):
    module = randomised(make_pooling(dim=D, **{k: v for k, v in GRADIENT_CASES[case].items() if k != "num_heads"}))
    edge_index, distance, upstream, bearing = random_graph()
    module(torch.randn(2, N, D, dtype=torch.float64), edge_index, distance, upstream=upstream).square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_relabelling_nodes_permutes_outputs(case):
    module = randomised(CASES[case][0]())
    edge_index, distance, upstream, bearing = random_graph(seed=3)
    h = torch.randn(2, N, D, dtype=torch.float64)
    perm = torch.randperm(N)  # new node j is old node perm[j]
    new_label = torch.argsort(perm)
    shuffle = torch.randperm(edge_index.shape[1])  # edge order must not matter either
    out = module(h, edge_index, distance, upstream=upstream, bearing=bearing)
    out_relabelled = module(
        h[:, perm],
        new_label[edge_index][:, shuffle],
        distance[shuffle],
        upstream=upstream[shuffle],
        bearing=bearing[shuffle],
    )
    torch.testing.assert_close(out_relabelled, out[:, perm])


def test_auto_layout_is_dense_only_where_pairs_are_few():
    attention = make_pooling("attention", 32)
    assert attention.uses_dense(207, 2634)  # Los-loop: 207 VDs, 13 neighbours each
    assert not make_pooling("attention", 32, num_heads=8).uses_dense(207, 2634)  # 8 N x N score maps
    assert not attention.uses_dense(1000, 8000)  # the demo corridor at 1,000 sensors
    assert not attention.uses_dense(20_000, 20_000**2)  # a complete graph, too big for N x N
    with pytest.raises(ValueError, match="layout"):
        make_pooling("attention", 32, layout="blocked")


def test_dense_layout_reaches_its_isolated_target_with_zeros_and_finite_gradients():
    module = randomised(make_pooling("attention", D, layout="dense"))
    edge_index, distance, upstream, _ = random_graph()
    h = torch.randn(2, N, D, dtype=torch.float64, requires_grad=True)
    out = module(h, edge_index, distance, upstream=upstream)
    out.square().sum().backward()
    assert torch.count_nonzero(out[:, ISOLATED]) == 0
    assert all(torch.isfinite(p.grad).all() for p in module.parameters()) and torch.isfinite(h.grad).all()


def ring_graph(num_nodes: int, spacing_m: float = 500.0):
    """Each node pools its two ring neighbours: i-1 (upstream) and i+1 (downstream)."""
    node = torch.arange(num_nodes)
    src = torch.cat([(node - 1) % num_nodes, (node + 1) % num_nodes])
    edge_index = torch.stack([src, torch.cat([node, node])])
    upstream = torch.cat([torch.ones(num_nodes), -torch.ones(num_nodes)]).long()
    return edge_index, torch.full((2 * num_nodes,), spacing_m), upstream


def test_twenty_thousand_node_ring_is_sparse():
    num_nodes = 20_000
    edge_index, distance, upstream = ring_graph(num_nodes)
    h = torch.randn(2, 3, num_nodes, 8)
    mean = make_pooling("mean", 8)(h, edge_index, distance)
    torch.testing.assert_close(mean, (h.roll(1, dims=-2) + h.roll(-1, dims=-2)) / 2)
    # the grid keeps upstream and downstream apart: its bins are exactly the two rolled states
    grid = make_pooling("grid", 8, out_dim=8)
    expected = (
        torch.cat(
            [
                h.roll(1, dims=-2),
                torch.zeros_like(h),
                torch.zeros_like(h),
                h.roll(-1, dims=-2),
                torch.zeros_like(h).repeat(1, 1, 1, 5),
            ],
            dim=-1,
        )
        @ grid.mix.weight.T
    )
    torch.testing.assert_close(grid(h, edge_index, distance, upstream=upstream), expected)
    with torch.profiler.profile(profile_memory=True) as prof:
        attention = make_pooling("attention", 8, num_heads=2)(h, edge_index, distance, upstream=upstream)
    assert attention.shape == (2, 3, num_nodes, 8)
    largest = max(event.cpu_memory_usage for event in prof.events())
    assert largest < num_nodes * num_nodes  # bytes: far below even one byte per node pair


def test_bad_arguments_are_refused():
    edge_index, distance, _, _ = random_graph()
    h = torch.randn(N, D)
    with pytest.raises(ValueError, match="unknown pooling kind"):
        make_pooling("max", D)
    with pytest.raises(ValueError, match="no parameters"):
        make_pooling("mean", D, out_dim=D + 1)
    with pytest.raises(ValueError, match="upstream sign"):
        GridPooling(D)(h, edge_index, distance)
    with pytest.raises(ValueError, match="outside"):
        make_pooling("mean", D)(torch.randn(N - 2, D), edge_index, distance)
    with pytest.raises(ValueError, match="distance_m"):
        make_pooling("idw", D)(h, edge_index, distance[:-1])
