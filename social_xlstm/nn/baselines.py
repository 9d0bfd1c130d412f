"""Honest non-neural baselines that map the model's batch to forecasts ``[B, H, N, G]``.

Both are ``nn.Module``s with ``forward(batch)`` reading the batch contract (a mapping with
``x [B, T_in, N, F]`` scaled with missing = 0, ``x_mask`` bool like x, ``time [B, T_in + H, 4]``),
so the evaluation runs them exactly like the model, and their fitted statistics are buffers, so
they checkpoint with ``state_dict``. H is read from the batch: ``time.shape[1] - x.shape[1]``.

Units: a baseline works in the space it is given. Feed it the batch as is (scaled) and fit it on
the training targets scaled the same way; its forecasts are then scaled like the model's and
the evaluation inverse-scales both alike. This is exact, not an approximation: scalers are affine
per feature (or per sensor and feature), and "the last value" and "an average" commute with an
affine map. Fitted on real units, they forecast real units.

Time features (for HistoricalAverage): ``time[..., 0:2]`` = sin, cos of 2 pi * (time of day as a
fraction of the day), ``time[..., 2:4]`` = sin, cos of 2 pi * day of week / 7 (Monday = 0), in
the dataset's local time. The day of week may be the whole day or run on through the day
(``(day + fraction of day) / 7``); both decode to the same day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from social_xlstm.errors import InputError
from social_xlstm.timefeatures import SECONDS_PER_DAY

DAY_KINDS = {"week": 7, "weekend": 2}  # day of week (Mon = 0), or weekday = 0 / weekend = 1


STEPS_PER_CHUNK = 256


def _training_array(values, name: str = "train_targets") -> np.ndarray:
    """The [T, N, G] training targets as given (NaN for missing readings), not copied."""
    array = np.asarray(values)
    if array.ndim != 3:
        raise ValueError(f"{name} must be [T, N, G], got shape {tuple(array.shape)}")
    return array


def _observed_sums(values: np.ndarray, cell_of_step: Tensor, cells: int) -> tuple[Tensor, Tensor]:
    """Sums and counts ``[cells, N, G]`` of the observed values, step t going to cell
    ``cell_of_step[t]``. A few hundred steps at a time in float64: exact sums without a float64
    copy of the whole split (190 MiB for a month of 2,000 VDs)."""
    total, count = (torch.zeros(cells, *values.shape[1:], dtype=torch.float64) for _ in range(2))
    for start in range(0, values.shape[0], STEPS_PER_CHUNK):
        chunk = torch.as_tensor(np.asarray(values[start : start + STEPS_PER_CHUNK], dtype=np.float64))
        observed = torch.isfinite(chunk)
        where = cell_of_step[start : start + len(chunk)]
        total.index_add_(0, where, torch.where(observed, chunk, 0.0))
        count.index_add_(0, where, observed.double())
    return total, count


def _masked_mean(total: Tensor, count: Tensor) -> Tensor:
    """total / count, NaN where nothing was observed."""
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


def _sensor_means(total: Tensor, count: Tensor) -> Tensor:
    """Training mean per (sensor, target) [N, G] from sums over time; a sensor never observed
    gets the target's mean."""
    overall = _masked_mean(total.sum(0), count.sum(0))
    empty = torch.nonzero(torch.isnan(overall)).flatten().tolist()
    if empty:
        raise InputError("training split", f"target column(s) {empty} have no observed value to fit a baseline on")
    return torch.where(count > 0, _masked_mean(total, count), overall)


def _forecast_steps(batch: Mapping[str, Tensor]) -> int:
    horizon = batch["time"].shape[1] - batch["x"].shape[1]
    if horizon < 1:
        raise ValueError(
            f"baseline: time must cover T_in + H steps, got {batch['time'].shape[1]} for T_in = {batch['x'].shape[1]}"
        )
    return horizon


class Persistence(nn.Module):
    """Tomorrow looks like now: repeat each sensor's last observed value of each target.

    The last input step if observed, else the most recent observed step of the window, else
    the sensor's training mean (``fallback [N, G]``).
    """

    def __init__(self, target_channels: Sequence[int], fallback: Tensor):
        super().__init__()
        if fallback.dim() != 2 or fallback.shape[1] != len(target_channels):
            raise ValueError(f"Persistence: fallback must be [N, {len(target_channels)}], got {tuple(fallback.shape)}")
        self.register_buffer("target_channels", torch.as_tensor(list(target_channels), dtype=torch.long))
        self.register_buffer("fallback", fallback.float())

    @classmethod
    def fit(cls, train_targets, target_channels: Sequence[int]) -> Persistence:
        """From the training targets ``[T, N, G]`` (NaN = missing) and where the targets sit in x's F axis."""
        values = _training_array(train_targets)
        total, count = _observed_sums(values, torch.zeros(len(values), dtype=torch.long), cells=1)
        return cls(target_channels, _sensor_means(total[0], count[0]))

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        x = batch["x"].index_select(-1, self.target_channels)
        observed = batch["x_mask"].index_select(-1, self.target_channels)
        steps = torch.arange(1, x.shape[1] + 1, device=x.device).view(1, -1, 1, 1)
        last = (observed * steps).amax(dim=1)  # [B, N, G]: 1-based step of the last reading, 0 = none
        value = x.gather(1, (last - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
        value = torch.where(last > 0, value, self.fallback.to(x.dtype))
        return value.unsqueeze(1).expand(-1, _forecast_steps(batch), -1, -1)


def calendar_of_timestamps(timestamps: pd.DatetimeIndex, interval: pd.Timedelta, days: str) -> tuple[Tensor, Tensor]:
    """(day kind, slot of day) per timestamp, read from the local wall clock."""
    seconds = timestamps.hour * 3600 + timestamps.minute * 60 + timestamps.second
    slot = np.asarray(seconds) // int(interval.total_seconds())
    weekday = np.asarray(timestamps.day_of_week)
    day = weekday if days == "week" else (weekday >= 5).astype(np.int64)
    return torch.as_tensor(day, dtype=torch.long), torch.as_tensor(slot, dtype=torch.long)


def calendar_of_time_features(time: Tensor, slots_per_day: int, days: str) -> tuple[Tensor, Tensor]:
    """(day kind, slot of day) decoded from sin/cos time features ``[..., 4]`` (see module doc)."""
    turn = 2 * math.pi
    day_fraction = torch.remainder(torch.atan2(time[..., 0], time[..., 1]).double() / turn, 1.0)
    slot = torch.floor(day_fraction * slots_per_day + 1e-3).long() % slots_per_day
    week = torch.remainder(torch.atan2(time[..., 2], time[..., 3]).double() / turn * 7, 7.0)
    # whole-day encoding: week is an integer; running encoding: week - day_fraction is
    whole, running = week, week - day_fraction
    use_running = (running - running.round()).abs() < (whole - whole.round()).abs()
    weekday = torch.where(use_running, running, whole).round().long() % 7
    day = weekday if days == "week" else (weekday >= 5).long()
    return day, slot


class HistoricalAverage(nn.Module):
    """Seasonal mean: the training average for the forecast step's (day kind, slot of day, sensor, target).

    ``table [K, S, N, G]`` holds it with the fallbacks already resolved: a cell never observed
    takes the slot's mean over all days for that sensor, then the sensor's mean, then the
    target's mean over the whole training split.
    """

    def __init__(self, table: Tensor, days: str = "week"):
        super().__init__()
        if days not in DAY_KINDS:
            raise ValueError(f"HistoricalAverage: days must be one of {', '.join(DAY_KINDS)}, got {days!r}")
        if table.dim() != 4 or table.shape[0] != DAY_KINDS[days]:
            raise ValueError(f"HistoricalAverage: table must be [{DAY_KINDS[days]}, S, N, G], got {tuple(table.shape)}")
        self.days = days
        self.register_buffer("table", table.float())

    @classmethod
    def fit(
        cls, train_targets, timestamps: pd.DatetimeIndex, interval: pd.Timedelta, days: str = "week"
    ) -> HistoricalAverage:
        """From training targets ``[T, N, G]`` (NaN = missing), their timestamps and the grid interval."""
        values = _training_array(train_targets)
        if len(timestamps) != values.shape[0]:
            raise ValueError(f"HistoricalAverage.fit: {len(timestamps)} timestamps for {values.shape[0]} steps")
        step = int(pd.Timedelta(interval).total_seconds())
        if step <= 0 or SECONDS_PER_DAY % step:
            raise InputError("interval", f"historical average needs an interval that divides a day, got {interval}")
        if days not in DAY_KINDS:
            raise ValueError(f"HistoricalAverage: days must be one of {', '.join(DAY_KINDS)}, got {days!r}")
        num_days, num_slots = DAY_KINDS[days], SECONDS_PER_DAY // step
        day, slot = calendar_of_timestamps(timestamps, pd.Timedelta(interval), days)
        shape = (num_days, num_slots, *values.shape[1:])
        total, count = _observed_sums(values, day * num_slots + slot, cells=num_days * num_slots)
        total, count = total.view(shape), count.view(shape)
        table = _masked_mean(total, count)
        table = torch.where(count > 0, table, _masked_mean(total.sum(0), count.sum(0)))
        sensor_means = _sensor_means(total.sum((0, 1)), count.sum((0, 1)))
        return cls(torch.where(torch.isnan(table), sensor_means, table), days)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        future = batch["time"][:, -_forecast_steps(batch) :]
        day, slot = calendar_of_time_features(future, self.table.shape[1], self.days)
        return self.table[day, slot].to(batch["x"].dtype)
