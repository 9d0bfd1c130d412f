"""The trained network wrapped so that raw readings go in and real units come out.

Both wrappers take readings in raw units with NaN for a missing reading and local seconds of
week (``timefeatures``), and do inside themselves, as the training pipeline did outside: the
z-score with the run's training statistics, missing -> 0 plus a mask, the time features, and the
inverse scaling of the forecasts (in float64). They are what ``torch.onnx.export`` traces, and
what a run directory forecasts with, so a run and its bundle compute the same thing.

The sensor graph is a buffer of the trained module and is baked into the ONNX graph as
constants: the weights were trained on exactly that graph and that sensor order, so exposing it
as an input would only invite a mismatch (metadata.json still records it for display).
Batch size is fixed at 1 (one network, one window: what a dashboard runs); a dynamic batch
axis failed to export through torch-geometric's scatter and is not offered.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from social_xlstm.data.windows import FeatureScaler
from social_xlstm.nn.ensemble import SocialXLSTMEnsemble
from social_xlstm.nn.model import ModelState
from social_xlstm.timefeatures import SECONDS_PER_DAY, SECONDS_PER_WEEK
from social_xlstm_kernels.slstm import NO_HISTORY_M


def time_features_from_seconds(seconds: torch.Tensor) -> torch.Tensor:
    """``[...]`` seconds of week -> ``[..., 4]`` float32 time features (exportable to ONNX)."""
    seconds = seconds.to(torch.float64)
    tod = (2 * math.pi / SECONDS_PER_DAY) * torch.remainder(seconds, SECONDS_PER_DAY)
    dow = (2 * math.pi / SECONDS_PER_WEEK) * seconds
    return torch.stack([torch.sin(tod), torch.cos(tod), torch.sin(dow), torch.cos(dow)], dim=-1).to(torch.float32)


class RawUnits(nn.Module):
    """Raw readings <-> the model's scaled inputs and outputs."""

    def __init__(self, scaler: FeatureScaler, features: list[str], targets: list[str]):
        super().__init__()
        index = [scaler.features.index(f) for f in features]
        target_index = [scaler.features.index(t) for t in targets]
        self.register_buffer("mean", torch.tensor(scaler.mean[index], dtype=torch.float32))
        self.register_buffer("std", torch.tensor(scaler.std[index], dtype=torch.float32))
        self.register_buffer("target_mean", torch.tensor(scaler.mean[target_index], dtype=torch.float64))
        self.register_buffer("target_std", torch.tensor(scaler.std[target_index], dtype=torch.float64))
        floor = [0.0 if non_negative else -math.inf for non_negative in scaler.non_negative[target_index]]
        self.register_buffer("target_floor", torch.tensor(floor, dtype=torch.float64))

    def scale(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[..., F] raw (NaN = missing) -> (scaled with 0 where missing, mask True = observed)."""
        observed = torch.isfinite(values)
        scaled = torch.where(observed, (values - self.mean) / self.std, torch.zeros_like(values))
        return scaled, observed

    def unscale(self, forecast: torch.Tensor) -> torch.Tensor:
        """[..., G] scaled forecasts -> float64 real units (``FeatureScaler.forecast_to_real``)."""
        return torch.maximum(forecast.to(torch.float64) * self.target_std + self.target_mean, self.target_floor)


class WindowNetwork(nn.Module):
    """values [1, T, N, F] raw + seconds_of_week [1, T] -> forecast [1, H, N, G] real units."""

    def __init__(self, module: nn.Module, units: RawUnits):
        super().__init__()
        self.module, self.units = module, units  # module: the trained ForecastModule (network + graph)

    def forward(self, values: torch.Tensor, seconds_of_week: torch.Tensor) -> torch.Tensor:
        x, mask = self.units.scale(values)
        forecast = self.module.model(x, mask, time_features_from_seconds(seconds_of_week), self.module.graph)
        return self.units.unscale(forecast)


class StreamState(NamedTuple):
    """What the streaming graph carries: the model's ``ModelState`` of both staggered streams
    (batch of 2, without the step counter) and ``phase``, the readings seen modulo 2 * input_len."""

    encoder: tuple
    interaction: tuple
    last_value: torch.Tensor
    recent: tuple  # the window head's buffer of recent readings, () without one
    phase: torch.Tensor  # [1] float32


def flatten_state(tree) -> list[torch.Tensor]:
    """Nested (named) tuples of tensors -> their leaves, depth first."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    return [leaf for item in tree for leaf in flatten_state(item)]


def unflatten_state(template, leaves):
    """Inverse of ``flatten_state``: rebuild ``template``'s structure from an iterator of leaves."""
    if isinstance(template, torch.Tensor):
        return next(leaves)
    items = [unflatten_state(item, leaves) for item in template]
    return type(template)(*items) if hasattr(template, "_fields") else tuple(items)


def state_names(tree, prefix: str = "") -> list[str]:
    """Dotted path of every leaf (named-tuple fields by name), e.g. ``encoder.0.h``."""
    if isinstance(tree, torch.Tensor):
        return [prefix]
    keys = tree._fields if hasattr(tree, "_fields") else range(len(tree))
    return [
        name for key, item in zip(keys, tree) for name in state_names(item, f"{prefix}.{key}" if prefix else str(key))
    ]


def _fresh_slstm_block(block):
    """A zeroed sLSTM block state with its stabiliser m (the last leaf) at NO_HISTORY_M."""
    return unflatten_state(block, iter([*flatten_state(block)[:-1], torch.full_like(block[-1], NO_HISTORY_M)]))


class StepNetwork(nn.Module):
    """One reading per VD: reading [1, N, F] raw + seconds_of_week [1] + state leaves ->
    (forecast [1, H, N, G] real units, new state leaves), leaves in ``state_names()`` order.

    The model was trained on windows of input_len readings, and a recurrent state that keeps
    every reading since the start forecasts worse the longer it runs (Los-loop: +12.6% MAE
    over the test days; docs/benchmarks.md, "Streaming accuracy"). So two streams run side by
    side as a batch of 2 and restart from the fresh state in turn, stream 0 when the phase is 0
    and stream 1 when it is input_len, the phase counting readings modulo 2 * input_len. The
    forecast comes from the stream that has seen between input_len and 2 * input_len - 1
    readings: exactly the windowed forecast twice a period, and a few readings more between.
    """

    STREAMS = 2

    def __init__(self, module: nn.Module, units: RawUnits, input_len: int):
        super().__init__()
        self.module, self.units, self.input_len = module, units, input_len
        config = module.model.config
        reading = torch.zeros(self.STREAMS, config.num_sensors, config.num_features)
        _, state = module.model.step(
            reading, torch.ones_like(reading, dtype=torch.bool), torch.zeros(self.STREAMS, 4), module.graph
        )
        self.template = StreamState(state.encoder, state.interaction, state.last_value, state.recent, torch.zeros(1))
        self._fresh_model_leaves = self.fresh_state()[:-1]  # what a restart sets a stream's leaves back to

    def state_names(self) -> list[str]:
        return state_names(self.template)

    def fresh_state(self) -> list[torch.Tensor]:
        """The state before the first reading: zeros, except each sLSTM block's stabiliser m
        (its last leaf), which starts at NO_HISTORY_M as the kernels do when given no state."""
        zero = unflatten_state(self.template, (torch.zeros_like(leaf) for leaf in flatten_state(self.template)))
        if self.module.model.config.encoder == "slstm":

            def fresh(encoder):  # one network's blocks
                return tuple(_fresh_slstm_block(block) for block in encoder)

            ensemble = isinstance(self.module.model, SocialXLSTMEnsemble)
            zero = zero._replace(encoder=tuple(map(fresh, zero.encoder)) if ensemble else fresh(zero.encoder))
        return flatten_state(zero)

    def _restarted(self, leaves: list[torch.Tensor], restart: torch.Tensor) -> list[torch.Tensor]:
        """Each model-state leaf with the streams flagged in ``restart`` [2] set back to fresh
        (a leaf's leading axis is stream-major: 2 or 2 x N rows)."""
        return [
            torch.where(restart[:, None], fresh.reshape(self.STREAMS, -1), leaf.reshape(self.STREAMS, -1)).reshape(
                leaf.shape
            )
            for leaf, fresh in zip(leaves, self._fresh_model_leaves)
        ]

    def forward(self, reading: torch.Tensor, seconds_of_week: torch.Tensor, *state: torch.Tensor):
        *model_leaves, phase = state
        length = self.input_len
        restart = torch.cat([phase == 0, phase == length])  # stream 0 restarts at phase 0, stream 1 at input_len
        carried = unflatten_state(self.template, iter([*self._restarted(model_leaves, restart), phase]))
        x, mask = self.units.scale(reading.expand(self.STREAMS, -1, -1))
        time = time_features_from_seconds(seconds_of_week.expand(self.STREAMS))
        model_state = ModelState(carried.encoder, carried.interaction, carried.last_value, 0, carried.recent)
        forecast, new = self.module.model.step(x, mask, time, self.module.graph, model_state)
        first_has_seen_enough = (phase >= length - 1) & (
            phase <= 2 * length - 2
        )  # input_len .. 2 * input_len - 1 readings
        served = torch.where(first_has_seen_enough, forecast[:1], forecast[1:])
        next_phase = torch.where(phase + 1 >= 2 * length, torch.zeros_like(phase), phase + 1)
        return (
            self.units.unscale(served),
            *flatten_state(StreamState(new.encoder, new.interaction, new.last_value, new.recent, next_phase)),
        )
