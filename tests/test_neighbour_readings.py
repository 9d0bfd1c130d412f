"""Neighbour readings as encoder inputs: against a per-node loop written from the definition."""

import pytest
import torch

from social_xlstm.nn.neighbour_readings import GROUPS, NeighbourReadings
from social_xlstm.training.build import network_config
from social_xlstm.training.config import compose_config


def small_graph():
    """5 nodes; edge kinds mixed: upstream (+1), downstream (-1), unknown (0); node 4 has no edges in."""
    src = torch.tensor([1, 2, 3, 0, 2, 0, 3, 1])
    dst = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
    upstream = torch.tensor([1.0, -1.0, 0.0, 1.0, 1.0, -1.0, 0.0, 1.0])
    return torch.stack([src, dst]), upstream


def reference(x, mask, edge_index, upstream, hops):
    """Loops over nodes, groups and hops: the mean of the previous hop's means over a group's
    neighbours, weighted by their observed shares; the share is the observed weight / degree."""
    n, f = x.shape[-2:]
    in_group = {
        "upstream": upstream > 0,
        "downstream": upstream < 0,
        "all": torch.ones_like(upstream, dtype=torch.bool),
    }
    out = []
    value = {g: x * mask for g in GROUPS}
    share = {g: mask.to(x.dtype) for g in GROUPS}
    for _ in range(hops):
        new_value, new_share = {}, {}
        for g in GROUPS:
            v, s = torch.zeros_like(x), torch.zeros_like(x)
            for node in range(n):
                edges = [e for e in range(edge_index.shape[1]) if edge_index[1, e] == node and in_group[g][e]]
                if not edges:
                    continue
                neighbours = edge_index[0, edges]
                weight = share[g][..., neighbours, :]
                observed = weight.sum(-2)
                total = (value[g][..., neighbours, :] * weight).sum(-2)
                v[..., node, :] = torch.where(observed > 0, total / observed.clamp_min(1e-12), 0.0)
                s[..., node, :] = observed / len(edges)
            new_value[g], new_share[g] = v, s
        value, share = new_value, new_share
        out.append(torch.stack([torch.stack([value[g], share[g]], -1) for g in GROUPS], -3))
    return torch.stack(out, -4).flatten(-4)


@pytest.mark.parametrize("layout", ["sparse", "dense"])
@pytest.mark.parametrize("hops", [1, 2, 3])
def test_matches_the_per_node_reference(hops, layout):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 2, generator=g, dtype=torch.float64)
    mask = (torch.rand(2, 3, 5, 2, generator=g) > 0.3).double()
    edge_index, upstream = small_graph()
    module = NeighbourReadings(num_features=2, hops=hops, layout=layout)
    got = module(x, mask, edge_index, upstream)
    assert got.shape == (2, 3, 5, module.out_dim) and module.out_dim == 2 * 2 * hops * len(GROUPS)
    torch.testing.assert_close(got, reference(x, mask, edge_index, upstream, hops))


@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_missing_neighbours_are_not_zero_speeds(layout):
    """Node 0 hears nodes 1 (upstream) and 2 (downstream); with 1 unobserved, the upstream mean
    is 0 with share 0 and the all-neighbour mean is node 2's value alone, share 1/2."""
    edge_index = torch.tensor([[1, 2], [0, 0]])
    upstream = torch.tensor([1.0, -1.0])
    x = torch.tensor([[[0.0], [5.0], [7.0]]], dtype=torch.float64)
    mask = torch.tensor([[[1.0], [0.0], [1.0]]], dtype=torch.float64)
    up, down, every = NeighbourReadings(1, hops=1, layout=layout)(x, mask, edge_index, upstream)[0, 0].view(3, 2)
    assert up.tolist() == [0.0, 0.0] and down.tolist() == [7.0, 1.0] and every.tolist() == [7.0, 0.5]


def test_switching_pooling_off_switches_neighbour_readings_off_too():
    model_cfg = compose_config(["model.pooling.input_hops=2"]).model
    options = dict(num_sensors=3, features=["speed"], targets=["speed"], horizon=2)
    assert network_config(model_cfg, **options).input_hops == 2
    for variant in ("no_pooling", "lstm"):
        assert network_config(model_cfg, **options, variant=variant).input_hops == 0
    model_cfg.pooling.kind = "none"
    assert network_config(model_cfg, **options).input_hops == 0


def test_hops_must_be_positive():
    with pytest.raises(ValueError, match="hops must be >= 1"):
        NeighbourReadings(1, hops=0)


def test_a_repeated_edge_counts_twice_in_both_layouts():
    """Node 0 hears node 1 over two parallel edges and node 2 over one: a 2:1 weighted mean."""
    edge_index = torch.tensor([[1, 1, 2], [0, 0, 0]])
    upstream = torch.zeros(3)
    x = torch.tensor([[0.0], [3.0], [6.0]], dtype=torch.float64)
    mask = torch.ones_like(x)
    for layout in ("sparse", "dense"):
        every = NeighbourReadings(1, hops=1, layout=layout)(x, mask, edge_index, upstream)[0].view(3, 2)[2]
        assert every.tolist() == [4.0, 1.0]


def test_auto_layout_is_dense_only_on_small_dense_graphs():
    module = NeighbourReadings(1, hops=1)
    assert module.uses_dense(207, 1515)  # Los-loop
    assert not module.uses_dense(1000, 2000)  # a sparse road network: the sum over edges wins
    assert not module.uses_dense(5000, 5000 * 5000)  # the operator would not fit
    assert NeighbourReadings(1, hops=1, layout="sparse").uses_dense(207, 1515) is False
    with pytest.raises(ValueError, match="layout"):
        NeighbourReadings(1, hops=1, layout="grid")
