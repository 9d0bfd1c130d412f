"""The field's forecasters, as maintained packages ship them, on Social-xLSTM's batches.

Each peer is the package's own network (never a copy of its code) behind an adapter with the
model's signature, ``forward(x [B, T, N, F], x_mask, time [B, T+H, 4], graph) -> [B, H, N, G]``
in scaled units, so the same ``ForecastModule`` loss, windows, scaler, masks and scoring serve
every forecaster. What an adapter adds is what the package expects and our batches carry in
another form: the time-of-day slot (and, for STID, the weekend flag), the series of the target
channel, the adjacency matrix.

``PEERS`` records each one's published settings, for METR-LA where they exist (Los-loop is 207 of
METR-LA's sensors), else for the closest published data, and the source of each number. The
packages come with `make bench` (see the Makefile: basicts pins old versions of setuptools,
tensorboard and transformers it does not need for its models, so it is installed without its
dependencies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable

import torch
from torch import nn

from social_xlstm.nn.identity import weekend_flag
from social_xlstm.nn.model import GraphTensors


def fraction_of_cycle(sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """The angle whose sin and cos are given, as a [0, 1) fraction of the turn."""
    return torch.remainder(torch.atan2(sin, cos) / (2 * math.pi), 1.0)


def time_of_day_slot(time: torch.Tensor, slots: int) -> torch.Tensor:
    """time [..., 4] (sin, cos of the time of day first) -> the slot of the day, 0..slots-1."""
    fraction = fraction_of_cycle(time[..., 0], time[..., 1])
    return torch.remainder(torch.round(fraction * slots), slots).long()


def day_of_week(time: torch.Tensor) -> torch.Tensor:
    """time [..., 4] (sin, cos of the day of week third and fourth) -> the day, Monday = 0."""
    return torch.floor(fraction_of_cycle(time[..., 2], time[..., 3]) * 7 + 1e-4).clamp(max=6)


# STID's day-of-week rows: the row of each time step, per number of rows (0 rows: no embedding)
DAY_ROW = {2: lambda time: weekend_flag(time)[..., 0], 7: day_of_week}


class TargetsAdapter(nn.Module):
    """A peer that reads the targets' series [B, T, N, G] (missing = 0, the scaled mean) and the
    time features of every reading [B, T, 4], and returns [B, H, N, G]."""

    def __init__(self, network: nn.Module, call: Callable, channels: list[int]):
        super().__init__()
        self.network, self.call = network, call
        self.register_buffer("channels", torch.tensor(channels), persistent=False)

    def forward(self, x, x_mask, time, graph):
        series = x[..., self.channels] * x_mask[..., self.channels]
        return self.call(self.network, series, time[:, : x.shape[1]], graph)


def _per_series(network: nn.Module, series: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
    """basicts models read [B, T, S] and return [B, H, S]: every (sensor, target) pair is one series S."""
    b, t, n, g = series.shape
    return network(series.reshape(b, t, n * g), *inputs).view(b, -1, n, g)


def _stid(
    num_sensors: int,
    num_targets: int,
    input_len: int,
    horizon: int,
    slots: int,
    edge_weight: torch.Tensor,
    *,
    day_rows: int = 0,
) -> tuple[nn.Module, Callable]:
    """STID forecasts each series on its own: every (sensor, target) pair is one, with its own
    embedding. ``day_rows``: its day-of-week embedding, off (0), two rows, working day and weekend
    (2: what Social-xLSTM's ``model.weekend_input`` reads), or the published seven (7)."""
    from basicts.models.STID import STID
    from basicts.models.STID.config.stid_config import STIDConfig

    config = STIDConfig(
        input_len=input_len,
        output_len=horizon,
        num_features=num_sensors * num_targets,
        input_hidden_size=32,
        num_layers=3,
        if_spatial=True,
        spatial_hidden_size=32,
        if_time_in_day=True,
        num_time_in_day=slots,
        tid_hidden_size=32,
        if_day_in_week=day_rows > 0,
        num_day_in_week=max(day_rows, 1),
        diw_hidden_size=32,
    )

    def call(network, series, time, _graph):
        # basicts multiplies [0, 1) stamps by the number of rows and truncates: the middle of
        # each row keeps the truncation exact.
        slot = time_of_day_slot(time, slots).float()
        day = DAY_ROW[day_rows](time) if day_rows else torch.zeros_like(slot)
        rows = max(day_rows, 1)
        return _per_series(network, series, torch.stack([(slot + 0.5) / slots, (day + 0.5) / rows], dim=-1))

    return STID(config), call


def _stemgnn(num_sensors, num_targets, input_len, horizon, slots, edge_weight):
    """StemGNN learns its graph from the series (self-attention over the sensors) and reads
    neither the road graph nor the time of day, as published."""
    from basicts.models.StemGNN import StemGNN
    from basicts.models.StemGNN.config.stemgnn_config import StemGNNConfig

    config = StemGNNConfig(
        input_len=input_len,
        output_len=horizon,
        num_features=num_sensors * num_targets,
        num_blocks=2,
        hidden_size=5,
        dropout=0.5,
        leaky_rate=0.2,
    )

    return _series_alone(StemGNN(config))


def _itransformer(num_sensors, num_targets, input_len, horizon, slots, edge_weight):
    """iTransformer embeds each series' whole window as one token and attends across the series:
    attention over the sensors, learned from the data, with no road graph. Its authors fed it no
    time stamps on PEMS, so it reads none here either."""
    from basicts.models.iTransformer import iTransformerConfig, iTransformerForForecasting

    config = iTransformerConfig(
        input_len=input_len,
        output_len=horizon,
        num_features=num_sensors * num_targets,
        hidden_size=512,
        n_heads=8,
        intermediate_size=512,
        num_layers=4,
        dropout=0.1,
        use_revin=True,
    )
    return _series_alone(iTransformerForForecasting(config))


def _series_alone(network: nn.Module) -> tuple[nn.Module, Callable]:
    """A basicts network that reads the series and nothing else (no time, no road graph)."""
    return network, lambda net, series, _time, _graph: _per_series(net, series)


def _day_fraction(time: torch.Tensor, slots: int) -> torch.Tensor:
    """[B, T, 1]: the time of day as a [0, 1) fraction, on the slot grid, as the tsl models read it."""
    return (time_of_day_slot(time, slots).float() / slots)[..., None]


def sparse_adjacency(graph: GraphTensors, edge_weight: torch.Tensor, num_sensors: int):
    """The road graph weighted by ``edge_weight`` [E] as the sparse matrix a message-passing layer
    multiplies by, rows the receiving sensors (PyG's ``adj_t``). tsl's diffusion convolution computes the same
    numbers from it as from the edge list, about 2.8x faster on the CPU (one Graph WaveNet step
    on Los-loop, batch 64, 1 thread, forward and backward: 11.1-11.6 s against 30.5-33.9 s):
    one sparse product per hop instead of a gather and a scatter over every edge of every window."""
    from torch_sparse import SparseTensor

    source, receiver = graph.edge_index
    weight = edge_weight.to(receiver.device)
    return SparseTensor(row=receiver, col=source, value=weight, sparse_sizes=(num_sensors,) * 2)


def _with_time_of_day(network, series, time, graph, edge_weight, slots):
    """The tsl graph models read the series, the weighted road graph and, as their papers fed METR-LA,
    the time of day as a second input channel (a [0, 1) fraction of the day)."""
    adjacency = sparse_adjacency(graph, edge_weight, series.shape[2])
    return network(series, adjacency, u=_day_fraction(time, slots))


def _graph_wavenet(num_sensors, num_targets, input_len, horizon, slots, edge_weight):
    from tsl.nn.models import GraphWaveNetModel

    network = GraphWaveNetModel(
        input_size=num_targets,
        output_size=num_targets,
        horizon=horizon,
        exog_size=1,
        hidden_size=32,
        ff_size=256,
        n_layers=8,
        temporal_kernel_size=2,
        spatial_kernel_size=2,
        learned_adjacency=True,
        n_nodes=num_sensors,
        emb_size=10,
        dilation=2,
        dilation_mod=2,
        dropout=0.3,
    )
    return network, lambda net, series, time, g: _with_time_of_day(net, series, time, g, edge_weight, slots)


def _agcrn(num_sensors, num_targets, input_len, horizon, slots, edge_weight):
    from tsl.nn.models import AGCRNModel

    network = AGCRNModel(
        input_size=num_targets,
        output_size=num_targets,
        horizon=horizon,
        n_nodes=num_sensors,
        hidden_size=64,
        emb_size=10,
        exog_size=1,
        n_layers=2,
    )

    def call(net, series, time, _graph):  # learns its own graph from node embeddings
        return net(series, u=_day_fraction(time, slots))

    return network, call


def _dcrnn(num_sensors, num_targets, input_len, horizon, slots, edge_weight):
    from tsl.nn.models import DCRNNModel

    network = DCRNNModel(
        input_size=num_targets,
        output_size=num_targets,
        horizon=horizon,
        exog_size=1,
        hidden_size=64,
        kernel_size=2,
        n_layers=2,
    )
    return network, lambda net, series, time, g: _with_time_of_day(net, series, time, g, edge_weight, slots)


@dataclass(frozen=True)
class Peer:
    """A peer network and its published training recipe (METR-LA unless said)."""

    # (sensors, targets, input_len, horizon, slots, edge_weight) -> (network, call)
    build: Callable
    source: str  # the package and the paper the settings come from
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    gradient_clip_val: float | None = None
    patience: int = 20
    adapted: tuple[str, ...] = field(default_factory=tuple)  # what one week of data forces
    # torch.compile can trace its step: not those multiplying by torch_sparse's matrix, whose
    # custom kernels dynamo cannot run on fake tensors (torch 2.13)
    compiles: bool = True
    # raised when a change inside ``build`` changes what a seed learns, so that seeds trained
    # before are refused rather than resumed (1: the graph peers read the dataset's edge weights)
    revision: int = 0


PEERS = {
    "stid": Peer(
        build=_stid,
        source="basicts 1.1 STID (Shao et al., CIKM 2022), the published METR-LA settings: 3 MLP layers, "
        "32-wide series, node and time-of-day embeddings, 288 slots; Adam lr 0.002, weight decay 1e-4, "
        "lr x0.5 at epochs 1, 50, 80, batch 32, 100 epochs",
        lr=0.002,
        weight_decay=1e-4,
        batch_size=32,
        max_epochs=200,
        milestones=(1, 50, 80),
        gamma=0.5,
        adapted=(
            "no day-of-week embedding (one week: the test weekdays are not in training)",
            "up to 200 epochs, not 100, with early stopping after 20 without a better validation error: at "
            "100, one seed of 3 was still improving",
            "basicts 1.1's STID has no dropout setting (the release before 1.0 used 0.15 in its MLP)",
            "basicts 1.1 embeds the series alone, where the release before 1.0 also fed the time stamps of "
            "every input step to the series embedding",
        ),
    ),
}
# STID given what Social-xLSTM's model.weekend_input gives it: its own day-of-week embedding, with
# two rows (working day, weekend) instead of seven, so that a week of data can teach it.
PEERS["stid-weekend"] = replace(
    PEERS["stid"],
    build=partial(_stid, day_rows=2),
    adapted=(
        "a day-of-week embedding of two rows, working day and weekend (one week: the test weekdays are not "
        "in training, but working days and weekends are)",
        *PEERS["stid"].adapted[1:],
    ),
)
# The published day-of-week embedding, for data of several weeks (the demo's four).
PEERS["stid-week"] = replace(
    PEERS["stid"], build=partial(_stid, day_rows=7), adapted=("none to the network", *PEERS["stid"].adapted[1:])
)


PEERS.update(
    {
        "graph-wavenet": Peer(
            build=_graph_wavenet,
            source="torch-spatiotemporal 0.9.5 GraphWaveNetModel (Wu et al., IJCAI 2019), the published METR-LA "
            "settings: 8 layers of dilation 1, 2, kernel 2, 32 channels, skip 256, learned adjacency with "
            "10-dim node embeddings beside the road graph weighted by DCRNN's kernel of road distance (diffusion "
            "order 2), dropout 0.3, time of day as an "
            "input channel; Adam lr 0.001, weight decay 1e-4, batch 64, gradient clip 5, 100 epochs",
            lr=0.001,
            weight_decay=1e-4,
            batch_size=64,
            max_epochs=100,
            gradient_clip_val=5.0,
            compiles=False,
            revision=1,
            adapted=(
                "tsl's GraphWaveNetModel reads out through an MLP decoder of its own",
                "early stopping after 20 epochs without a better validation error, as for the other peers (the "
                "authors' code trains all 100 and keeps the best)",
            ),
        ),
        "agcrn": Peer(
            build=_agcrn,
            source="torch-spatiotemporal 0.9.5 AGCRNModel (Bai et al., NeurIPS 2020), the published settings (its "
            "paper tuned them on PEMSD4/8; it reports no METR-LA run): 2 layers of 64 units, 10-dim node "
            "embeddings, Chebyshev order 2; Adam lr 0.003, batch 64, 100 epochs, early stopping after 15",
            lr=0.003,
            weight_decay=0.0,
            batch_size=64,
            max_epochs=100,
            patience=15,
            adapted=("time of day as an input channel, as the other peers read it",),
        ),
        "dcrnn": Peer(
            build=_dcrnn,
            source="torch-spatiotemporal 0.9.5 DCRNNModel (Li et al., ICLR 2018), the published METR-LA sizes: 2 "
            "diffusion-convolutional GRU layers of 64 units, diffusion order 2, time of day as an input "
            "channel, the road graph as weighted by DCRNN's kernel of road distance; Adam lr 0.01, lr x0.1 at "
            "epochs 20, 30, 40, 50, batch 64, gradient clip 5, 100 epochs, early stopping after 50",
            lr=0.01,
            weight_decay=0.0,
            batch_size=64,
            max_epochs=100,
            milestones=(20, 30, 40, 50),
            gamma=0.1,
            gradient_clip_val=5.0,
            patience=50,
            compiles=False,
            revision=1,
            adapted=(
                "tsl's DCRNN is an encoder with an MLP read-out, not the paper's sequence-to-sequence decoder "
                "with scheduled sampling",
                "Adam's epsilon is torch's 1e-8, not the published 1e-3, and the lr goes on down to 1e-6 after "
                "epoch 50 where the published run kept a floor of 2e-6",
            ),
        ),
        "itransformer": Peer(
            build=_itransformer,
            source="basicts 1.1 iTransformer (Liu et al., ICLR 2024), its authors' settings for PEMS03 at 12 "
            "steps out (traffic sensors every 5 minutes; no METR-LA run is published): 4 encoder layers, "
            "512 wide, feed-forward 512, 8 heads, dropout 0.1, RevIN; Adam lr 0.001, batch 32, 10 epochs "
            "with the lr halved after each from the second, early stopping after 3",
            lr=0.001,
            weight_decay=0.0,
            batch_size=32,
            max_epochs=110,
            milestones=(22, 33, 44, 55, 66, 77, 88, 99),
            gamma=0.5,
            patience=33,
            adapted=(
                "12 steps in, not 96 (the protocol)",
                "its schedule counted in updates, not epochs: a PEMS03 epoch is 488 updates and a Los-loop "
                "one 43, so 11 of ours stand for one of theirs (lr halved every 11 epochs from the 22nd, at "
                "most 110 epochs, early stopping after 33); the published 10 epochs would be 430 updates",
                "the harness's masked MAE as the loss, where its authors used the MSE",
            ),
        ),
        "stemgnn": Peer(
            build=_stemgnn,
            source="basicts 1.1 StemGNN (Cao et al., NeurIPS 2020), BasicTS's METR-LA settings (the release "
            "before 1.0): 2 blocks, multi-layer 5, dropout 0.5, leaky rate 0.2, a graph learned from the "
            "series; Adam lr 0.0004, weight decay 3e-4, lr x0.5 at epochs 1 and 50, batch 16, 100 epochs",
            lr=0.0004,
            weight_decay=3e-4,
            batch_size=16,
            max_epochs=100,
            milestones=(1, 50),
            gamma=0.5,
            adapted=(
                "no time-of-day or weekday input (StemGNN reads the series alone, as published)",
                "early stopping after 20 epochs without a better validation error, as for the other peers "
                "(BasicTS trains all 100 and keeps the best)",
            ),
        ),
    }
)


def build_peer(
    name: str,
    *,
    num_sensors: int,
    input_len: int,
    horizon: int,
    slots: int,
    edge_weight: torch.Tensor,
    channels: list[int],
) -> nn.Module:
    """``edge_weight`` [E]: the strength of each edge of the graph the forward pass is given (its
    ``SensorGraph.weight``: on Los-loop the dataset's own, DCRNN's kernel of the road distance as
    published for METR-LA); only the graph peers given the road graph read it."""
    network, call = PEERS[name].build(num_sensors, len(channels), input_len, horizon, slots, edge_weight)
    return TargetsAdapter(network, call, channels)
