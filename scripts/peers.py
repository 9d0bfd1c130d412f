"""The field's forecasters, as maintained packages ship them, on Social-xLSTM's batches.

Each peer is the package's own network (never a copy of its code) behind an adapter with the
model's signature, ``forward(x [B, T, N, F], x_mask, time [B, T+H, 4], graph) -> [B, H, N, G]``
in scaled units, so the same ``ForecastModule`` loss, windows, scaler, masks and scoring serve
every forecaster. What an adapter adds is what the package expects and our batches carry in
another form: the time-of-day slot, the series of the target channel, the adjacency matrix.

``PEERS`` records each one's published METR-LA settings (Los-loop is 207 of METR-LA's sensors)
and the source of each number. The packages come with `make bench` (see the Makefile: basicts
pins old versions of setuptools, tensorboard and transformers it does not need for its models,
so it is installed without its dependencies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from social_xlstm.nn.model import GraphTensors


def time_of_day_slot(time: torch.Tensor, slots: int) -> torch.Tensor:
    """time [..., 4] (sin, cos of the time of day first) -> the slot of the day, 0..slots-1."""
    fraction = torch.remainder(torch.atan2(time[..., 0], time[..., 1]) / (2 * math.pi), 1.0)
    return torch.remainder(torch.round(fraction * slots), slots).long()


def dense_adjacency(graph: GraphTensors, num_sensors: int) -> torch.Tensor:
    """[N, N] with a[i, j] = Gaussian-kernel weight of the edge i -> j (distance-based, as DCRNN
    built METR-LA's), 0 without an edge; the graph's own edges, as the model pools over them."""
    source, target = graph.edge_index
    distance = graph.distance_m.double()
    known = distance[distance > 0]
    sigma = known.std() if known.numel() > 1 else torch.tensor(1.0, dtype=torch.float64)
    weight = torch.where(distance > 0, torch.exp(-((distance / sigma) ** 2)), torch.ones_like(distance))
    adjacency = torch.zeros(num_sensors, num_sensors, dtype=torch.float64)
    adjacency[source, target] = weight
    return adjacency.float()


class TargetsAdapter(nn.Module):
    """A peer that reads the targets' series [B, T, N, G] (missing = 0, the scaled mean) and the
    time-of-day slot of every reading [B, T], and returns [B, H, N, G]."""

    def __init__(self, network: nn.Module, call: Callable, slots: int, channels: list[int]):
        super().__init__()
        self.network, self.call, self.slots = network, call, slots
        self.register_buffer("channels", torch.tensor(channels), persistent=False)

    def forward(self, x, x_mask, time, graph):
        series = x[..., self.channels] * x_mask[..., self.channels]
        slot = time_of_day_slot(time[:, : x.shape[1]], self.slots)
        return self.call(self.network, series, slot, graph)


def _stid(
    num_sensors: int, num_targets: int, input_len: int, horizon: int, slots: int, graph: GraphTensors
) -> tuple[nn.Module, Callable]:
    """STID forecasts each series on its own: every (sensor, target) pair is one, with its own embedding."""
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
        if_day_in_week=False,
    )

    def call(network, series, slot, _graph):
        # basicts multiplies a [0, 1) time-of-day stamp by num_time_in_day and truncates: the
        # middle of the slot keeps the truncation exact.
        stamps = torch.stack([(slot.float() + 0.5) / slots, torch.zeros_like(slot, dtype=torch.float)], dim=-1)
        b, t, n, g = series.shape
        return network(series.reshape(b, t, n * g), stamps).view(b, -1, n, g)

    return STID(config), call


@dataclass(frozen=True)
class Peer:
    """A peer network and its published training recipe (METR-LA unless said)."""

    build: Callable  # (sensors, targets, input_len, horizon, slots, graph) -> (network, call)
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


PEERS = {
    "stid": Peer(
        build=_stid,
        source="basicts 1.1 STID (Shao et al., CIKM 2022), the published METR-LA settings: 3 MLP layers, "
        "32-wide series, node and time-of-day embeddings, 288 slots; Adam lr 0.002, weight decay 1e-4, "
        "lr x0.5 at epochs 1, 50, 80, batch 32, 100 epochs",
        lr=0.002,
        weight_decay=1e-4,
        batch_size=32,
        max_epochs=100,
        milestones=(1, 50, 80),
        gamma=0.5,
        adapted=(
            "no day-of-week embedding (one week: the test weekdays are not in training)",
            "basicts 1.1 embeds the series alone, where the release before 1.0 also fed the time stamps of "
            "every input step to the series embedding",
        ),
    ),
}


def build_peer(
    name: str, *, num_sensors: int, input_len: int, horizon: int, slots: int, graph: GraphTensors, channels: list[int]
) -> nn.Module:
    network, call = PEERS[name].build(num_sensors, len(channels), input_len, horizon, slots, graph)
    return TargetsAdapter(network, call, slots, channels)
