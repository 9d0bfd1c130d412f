"""From a dataset to model windows: chronological splits, a train-only scaler, time features.

Leakage rules (docs/architecture.md, "Windows"): splits are chronological, the scaler sees the training split only,
a window's inputs and targets lie inside one split, and missing readings are filled with 0
after scaling (the feature mean) and flagged in a mask, never imputed from later values.
A ``WindowDataset`` indexes windows into arrays shared by all splits, so its memory does not
grow with the number of windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from social_xlstm.data.dataset import Dataset
from social_xlstm.errors import InputError
from social_xlstm.timefeatures import time_features

SPLITS = ("train", "val", "test")
TIME_FEATURES = ("tod_sin", "tod_cos", "dow_sin", "dow_cos")
ArrayLike = TypeVar("ArrayLike", np.ndarray, torch.Tensor)


def chronological_splits(
    num_steps: int, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
) -> dict[str, tuple[int, int]]:
    """``{"train": (0, a), "val": (a, b), "test": (b, num_steps)}``: consecutive time ranges in the given
    proportions."""
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise InputError(
            "data config",
            f"split must be three positive fractions (train, val, test) summing to 1, got {list(fractions)}",
        )
    cuts = np.round(np.cumsum(fractions) * num_steps).astype(int)
    bounds = [0, int(cuts[0]), int(cuts[1]), num_steps]
    return {name: (bounds[i], bounds[i + 1]) for i, name in enumerate(SPLITS)}


@dataclass
class FeatureScaler:
    """Per-feature z-score with statistics from the training split; JSON-able for runs and bundles.

    ``non_negative`` marks the features never below zero in the training split (flow, speed,
    occupancy): their forecasts are floored at zero, so an affine head cannot report negative
    traffic. Runs written before it existed load with no floor.
    """

    features: list[str]
    mean: np.ndarray
    std: np.ndarray
    non_negative: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.non_negative is None:
            self.non_negative = np.zeros(len(self.features), dtype=bool)

    @classmethod
    def fit(cls, values: np.ndarray, features: list[str], where: str = "training split") -> FeatureScaler:
        """NaN-aware mean and (population) std of ``values[..., f]`` per feature; a constant feature gets std 1.

        One feature at a time, accumulated in float64: a month of 2,000 VDs never needs a float64
        copy of the whole training split.
        """
        mean, std = np.zeros(len(features)), np.ones(len(features))
        non_negative = np.zeros(len(features), dtype=bool)
        for f, name in enumerate(features):
            column = values[..., f]
            observed = column[np.isfinite(column)]
            if not observed.size:
                raise InputError(where, f"feature '{name}' has no reading to fit the scaler on")
            mean[f] = observed.mean(dtype=np.float64)
            std[f] = observed.std(dtype=np.float64) or 1.0
            non_negative[f] = observed.min() >= 0
        return cls(features=list(features), mean=mean, std=std, non_negative=non_negative)

    def _stats(self, features: list[str] | None, like: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
        names = self.features if features is None else list(features)
        unknown = [f for f in names if f not in self.features]
        if unknown:
            raise InputError(
                "scaler", f"feature '{unknown[0]}' was not fitted; the scaler knows {', '.join(self.features)}"
            )
        index = [self.features.index(f) for f in names]
        mean, std = self.mean[index], self.std[index]
        if isinstance(like, torch.Tensor):
            return torch.as_tensor(mean, dtype=like.dtype, device=like.device), torch.as_tensor(
                std, dtype=like.dtype, device=like.device
            )
        return mean.astype(like.dtype, copy=False), std.astype(like.dtype, copy=False)

    def transform(self, values: ArrayLike, features: list[str] | None = None, *, in_place: bool = False) -> ArrayLike:
        """Real units -> z-scores; the last axis holds ``features`` (default: all fitted ones, in order).

        ``in_place`` overwrites ``values`` (a copy the caller owns): a month of 2,000 VDs then
        needs no second and third array of its size.
        """
        mean, std = self._stats(features, values)
        if in_place:
            values -= mean
            values /= std
            return values
        return (values - mean) / std

    def inverse_transform(self, values: ArrayLike, features: list[str] | None = None) -> ArrayLike:
        """Z-scores -> real units, e.g. a model's ``[B, H, N, G]`` forecasts with ``features=targets``."""
        mean, std = self._stats(features, values)
        return values * std + mean

    def forecast_to_real(self, values: np.ndarray, features: list[str]) -> np.ndarray:
        """Scaled forecasts -> real units, floored at zero for the ``non_negative`` features."""
        real = self.inverse_transform(values, features)
        floored = self.non_negative[[self.features.index(f) for f in features]]
        return np.where(floored & (real < 0), 0.0, real).astype(real.dtype, copy=False)

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "non_negative": self.non_negative.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, where: str | Path = "scaler") -> FeatureScaler:
        try:
            features = [str(f) for f in data["features"]]
            mean = np.asarray(data["mean"], dtype=np.float64)
            std = np.asarray(data["std"], dtype=np.float64)
            non_negative = np.asarray(data.get("non_negative", [False] * len(features)), dtype=bool)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(where, f"scaler needs 'features', 'mean' and 'std' lists of numbers ({exc})") from None
        if any(array.shape != (len(features),) for array in (mean, std, non_negative)):
            raise InputError(
                where, f"scaler 'mean', 'std' and 'non_negative' must each hold {len(features)} values, one per feature"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise InputError(where, "scaler 'mean' must be finite and 'std' finite and positive")
        return cls(features=features, mean=mean, std=std, non_negative=non_negative)


@dataclass
class WindowArrays:
    """Whole-series tensors every split's windows slice into: scaled values (0 where missing), masks, time features."""

    x: torch.Tensor  # [T, N, F] float32
    x_mask: torch.Tensor  # [T, N, F] bool, True = observed
    y: torch.Tensor  # [T, N, G] float32
    y_mask: torch.Tensor  # [T, N, G] bool
    time: torch.Tensor  # [T, 4] float32

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, scaler: FeatureScaler, features: list[str], targets: list[str]
    ) -> WindowArrays:
        def scaled(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            values = dataset.values[:, :, [dataset.feature_index(f) for f in names]].astype(
                np.float32, copy=False
            )  # a copy (fancy index)
            observed = np.isfinite(values)
            scaler.transform(values, names, in_place=True)
            values[~observed] = 0.0
            return torch.from_numpy(values), torch.from_numpy(observed)

        x, x_mask = scaled(features)
        # read-only tensors: when the targets are the inputs (Los-loop's speed), one copy serves both
        y, y_mask = (x, x_mask) if list(targets) == list(features) else scaled(targets)
        return cls(x=x, x_mask=x_mask, y=y, y_mask=y_mask, time=torch.from_numpy(time_features(dataset.timestamps)))


class WindowDataset(TorchDataset):
    """Windows of one split: inputs ``[start, start + input_len)``, targets the next ``horizon`` steps.

    Window ``i`` starts at ``begin + i * stride``; only windows whose targets end by ``end`` exist,
    so no window reaches across the split boundary. Each item (the default collate adds a
    leading batch axis B)::

        x       [T_in, N, F] float32  scaled inputs, missing = 0
        x_mask  [T_in, N, F] bool     True = observed
        time    [T_in + H, 4] float32 time features of input and target steps
        y       [H, N, G] float32     scaled targets, missing = 0
        y_mask  [H, N, G] bool
        origin  int64                 time index of the last input step
    """

    def __init__(self, arrays: WindowArrays, begin: int, end: int, *, input_len: int, horizon: int, stride: int = 1):
        for name, value in (("input_len", input_len), ("horizon", horizon), ("stride", stride)):
            if int(value) != value or value < 1:
                raise InputError("data config", f"{name} must be a positive integer, got {value!r}")
        total = arrays.x.shape[0]
        if not 0 <= begin <= end <= total:
            raise ValueError(f"split [{begin}, {end}) is outside the series of {total} steps")
        self.arrays, self.begin, self.end = arrays, begin, end
        self.input_len, self.horizon, self.stride = int(input_len), int(horizon), int(stride)

    def __len__(self) -> int:
        span = self.end - self.begin - self.input_len - self.horizon
        return 0 if span < 0 else span // self.stride + 1

    def window_start(self, i: int) -> int:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        return self.begin + i * self.stride

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start = self.window_start(i)
        inputs, targets = (
            slice(start, start + self.input_len),
            slice(start + self.input_len, start + self.input_len + self.horizon),
        )
        a = self.arrays
        return {
            "x": a.x[inputs],
            "x_mask": a.x_mask[inputs],
            "time": a.time[start : targets.stop],
            "y": a.y[targets],
            "y_mask": a.y_mask[targets],
            "origin": torch.tensor(start + self.input_len - 1, dtype=torch.int64),
        }
