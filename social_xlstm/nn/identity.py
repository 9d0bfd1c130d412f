"""Identity inputs: where a reading sits in the day, and which VD it comes from.

Traffic repeats daily and every VD has its own level, so a forecaster gains a lot from knowing
the time of day and the sensor (STID, Shao et al. 2022, is little more than that). The time of
day is given to the model as sin/cos of one daily cycle; ``daily_harmonics`` widens that to K
harmonics, so a linear layer on them is a learned, smooth vector per time of day (a Fourier
series, which needs no table of slots and so serves any sampling interval). The harmonics are
built by angle addition from the one given, with products only: they trace into ONNX as they are.
``ForecastHead`` reads the model's last state beside the sensor embedding and the time of day
at the forecast origin, so the forecast need not carry both through the recurrence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The day-of-week angle (Monday 00:00 = 0) at which Saturday begins: the weekend is [10 pi / 7, 2 pi).
SATURDAY_COS = math.cos(2 * math.pi * 5 / 7)


def daily_harmonics(time: torch.Tensor, harmonics: int) -> torch.Tensor:
    """time [..., 4] (sin, cos of the time of day, then of the day of week) -> [..., 2K]:
    sin(k a), cos(k a) for k = 1..K, a the angle of the time of day."""
    sin1, cos1 = time[..., 0:1], time[..., 1:2]
    sines, cosines = [sin1], [cos1]
    for _ in range(harmonics - 1):
        s, c = sines[-1], cosines[-1]
        sines.append(s * cos1 + c * sin1)
        cosines.append(c * cos1 - s * sin1)
    return torch.cat(sines + cosines, dim=-1)


def weekend_flag(time: torch.Tensor) -> torch.Tensor:
    """time [..., 4] -> [..., 1]: 1 on Saturday and Sunday (local time), else 0.

    A week of data holds each weekday once, so the days to forecast are weekdays the network never
    saw, and a day-of-week input cannot generalise to them; whether a day is a working day can,
    because the training days hold both kinds. Read from the day-of-week sin/cos with comparisons
    only (ONNX traces them): on [pi, 2 pi) the sine is negative and the cosine grows with the angle,
    so the weekend is where sin < 0 and cos >= cos(10 pi / 7). The margin keeps Saturday 00:00,
    where float32 may round the cosine down, on the weekend side; one 5-minute step moves it by 3e-3.
    """
    sin_day, cos_day = time[..., 2:3], time[..., 3:4]
    return ((sin_day < 0) & (cos_day >= SATURDAY_COS - 1e-5)).to(time.dtype)


def time_inputs(time: torch.Tensor, harmonics: int, day_of_week: bool, weekend: bool = False) -> torch.Tensor:
    """The time inputs a network reads: the daily harmonics (at least the first) and, when asked,
    the day of week's sin/cos and the weekend flag."""
    parts = [daily_harmonics(time, max(harmonics, 1))]
    if day_of_week:
        parts.append(time[..., 2:4])
    if weekend:
        parts.append(weekend_flag(time))
    return torch.cat(parts, dim=-1)


def time_input_dims(harmonics: int, day_of_week: bool, weekend: bool = False) -> int:
    return 2 * max(harmonics, 1) + (2 if day_of_week else 0) + (1 if weekend else 0)


class ForecastHead(nn.Module):
    """state [B, N, D] -> [B, N, outputs].

    With ``layers`` = 0 a linear map of the normalised state. Otherwise the state, the sensor
    embedding [N, E], the time inputs at the forecast origin [B, C] and, when given, the recent
    readings as they are [B, N, W] (the short horizons lean on them) are projected to ``width``
    and go through ``layers`` residual ReLU blocks, then a linear map to the outputs."""

    def __init__(
        self,
        hidden: int,
        outputs: int,
        *,
        layers: int = 0,
        width: int = 128,
        identity_dims: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.layers = layers
        if layers:
            self.project = nn.Linear(hidden + identity_dims, width)
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width))
                for _ in range(layers)
            )
        self.out = nn.Linear(width if layers else hidden, outputs)

    def forward(
        self, state: torch.Tensor, sensor: torch.Tensor | None, time: torch.Tensor, window: torch.Tensor | None = None
    ) -> torch.Tensor:
        z = self.norm(state)
        if self.layers:
            b, n, _ = z.shape
            inputs = [z, time[:, None, :].expand(b, n, time.shape[-1])]
            if sensor is not None:
                inputs.append(sensor.expand(b, *sensor.shape))
            if window is not None:
                inputs.append(window)
            z = self.project(torch.cat(inputs, dim=-1))
            for block in self.blocks:
                z = z + block(z)
        return self.out(z)
