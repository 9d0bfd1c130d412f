"""What a bundle (onnxruntime) and a run directory (torch) share: the metadata's attributes, the
checks on what a caller passes in, and streaming.

Subclasses only run the network: ``run_window(values [1, T, N, F], seconds [1, T])`` and
``run_step(reading [1, N, F], seconds [1], state)``, both returning forecasts [1, H, N, G]. They
are public for callers that time or test the network alone; they check nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.errors import InputError
from social_xlstm.timefeatures import seconds_of_week


class Forecaster(ABC):
    """Forecasts in real units from raw readings (NaN = missing) in the model's sensor and feature order."""

    def __init__(self, path: str | Path, metadata: dict):
        self.path = Path(path)
        self.metadata = metadata
        self.sensors = pd.DataFrame(metadata["sensors"], columns=["sensor_id", "latitude", "longitude"])
        self.sensors["sensor_id"] = self.sensors["sensor_id"].astype(str)
        self.sensor_ids: list[str] = self.sensors["sensor_id"].tolist()
        self.features: list[str] = list(metadata["features"])
        self.targets: list[str] = list(metadata["targets"])
        self.horizons: list[int] = list(metadata["horizons"])
        self.input_len: int = int(metadata["input_len"])
        self.interval: str = metadata["interval"]
        self.timezone: str = metadata["timezone"]
        self.units: dict[str, str] = dict(metadata.get("units") or {})  # bundles before 2026-12 have none

    @property
    def interval_delta(self) -> pd.Timedelta:
        return pd.Timedelta(self.interval)

    def forecast(self, values: np.ndarray, timestamps: pd.DatetimeIndex) -> np.ndarray:
        """values [input_len, N, F] raw with NaN for missing, timestamps (tz-aware, one per
        row, ``interval`` apart) -> forecasts [H, N, G] for the steps after the last timestamp."""
        values = self._checked(values, (self.input_len, len(self.sensor_ids), len(self.features)), "values")
        if not isinstance(timestamps, pd.DatetimeIndex) or len(timestamps) != self.input_len:
            raise InputError("timestamps", f"expected a pandas DatetimeIndex of {self.input_len} time steps")
        if timestamps.tz is None:
            raise InputError("timestamps", "must be time-zone aware")
        if self.input_len > 1 and not (np.diff(timestamps.asi8) == self.interval_delta.value).all():
            raise InputError("timestamps", f"must be consecutive steps of {self.interval}")
        seconds = seconds_of_week(timestamps, self.timezone)
        return self.run_window(values[None], seconds[None])[0]

    def stream(self) -> Stream:
        """A fresh streaming forecaster (no history yet)."""
        return Stream(self)

    def fresh_state(self) -> list[np.ndarray]:
        return [np.full(s["shape"], s["initial"], dtype=np.float32) for s in self.metadata["streaming"]["state"]]

    @staticmethod
    def _checked(array, shape: tuple[int, ...], name: str) -> np.ndarray:
        array = np.asarray(array, dtype=np.float32)
        if array.shape != shape:
            raise InputError(
                name,
                f"expected shape {list(shape)} (sensors and features in the model's order), got {list(array.shape)}",
            )
        return array

    @abstractmethod
    def run_window(self, values: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """[1, T, N, F] raw values and [1, T] seconds of week -> [1, H, N, G] real units."""

    @abstractmethod
    def run_step(
        self, reading: np.ndarray, seconds: np.ndarray, state: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One reading [1, N, F] and its seconds of week [1] with the state -> (forecast, new state)."""


class Stream:
    """One reading per VD at a time; holds the model state between calls.

    Timestamps must advance on the ``interval`` grid; a skipped step is fed as a reading with
    every value missing, so a gap in the feed is a gap the model sees. After ``input_len``
    updates from a fresh stream the forecast equals the windowed one over the same readings; after
    ``k`` updates it is the windowed one over the last ``input_len + k % input_len`` readings
    (``networks.StepNetwork``).
    """

    def __init__(self, forecaster: Forecaster):
        self.forecaster = forecaster
        self.state = forecaster.fresh_state()
        self.last_timestamp: pd.Timestamp | None = None
        self.steps = 0

    def update(self, reading: np.ndarray, timestamp) -> np.ndarray:
        """reading [N, F] raw with NaN for missing at ``timestamp`` (tz-aware) -> forecasts [H, N, G]."""
        f = self.forecaster
        reading = f._checked(reading, (len(f.sensor_ids), len(f.features)), "reading")
        timestamp = pd.Timestamp(timestamp)
        if timestamp.tz is None:
            raise InputError("timestamp", "must be time-zone aware")
        pending = [timestamp]
        if self.last_timestamp is not None:
            gap = (timestamp - self.last_timestamp) / f.interval_delta
            if gap < 1 or gap != int(gap):
                raise InputError(
                    "timestamp", f"{timestamp} is not a later step of {f.interval} after {self.last_timestamp}"
                )
            pending = [self.last_timestamp + k * f.interval_delta for k in range(1, int(gap) + 1)]
        missing = np.full_like(reading, np.nan)
        for t in pending:
            seconds = seconds_of_week(pd.DatetimeIndex([t]), f.timezone)
            forecast, self.state = f.run_step((reading if t == timestamp else missing)[None], seconds, self.state)
            self.steps += 1
        self.last_timestamp = timestamp
        return forecast[0]
