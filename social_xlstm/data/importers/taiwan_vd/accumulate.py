"""Per-(sensor, interval) sums of readings, and their reduction to flow, speed and occupancy.

The grid is anchored at local midnight of 2000-01-01 in the output time zone and steps by a
fixed duration, so it is regular in absolute time (what ``Dataset`` requires) and its labels
fall on round local times. A reading belongs to the interval holding its DataCollectTime.

Flow and missing minutes: the feed reports one reading per minute, so an interval of m minutes
should hold m readings. Flow is the mean per-minute volume of the readings whose volumes are all
valid, times m: exactly the observed sum when all m are there, scaled up when some are missing,
and missing (NaN) when fewer than ``MIN_FLOW_COVERAGE`` of the m minutes are valid, because an
extrapolation from one or two minutes is a guess, not a count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from social_xlstm.data.importers.taiwan_vd.blocks import RowBlocks
from social_xlstm.data.importers.taiwan_vd.quality import STATS

BUCKETS_PER_BLOCK = 512
MIN_FLOW_COVERAGE = 0.5
FEATURES = ("flow", "speed", "occupancy")
GRID_ANCHOR = "2000-01-01"
_S = {name: i for i, name in enumerate(STATS)}


class IntervalSums:
    def __init__(self, interval_s: int, timezone: str):
        self.interval_s = interval_s
        self.timezone = timezone
        self.origin_s = pd.Timestamp(GRID_ANCHOR, tz=timezone).value // 10**9
        # float32 halves the memory of a long import; sums of volumes stay exact below 2**24
        self._sums = RowBlocks(len(STATS), BUCKETS_PER_BLOCK, np.float32)
        self.flow_scaled = 0
        self.flow_too_sparse = 0

    def add(self, rows: list[int], epochs: list[int], stats: list[tuple[float, ...]]) -> None:
        """Add a batch of reading contributions (one file's worth at a time, vectorised)."""
        if not rows:
            return
        rows_a = np.asarray(rows, dtype=np.int64)
        buckets = (np.asarray(epochs, dtype=np.int64) - self.origin_s) // self.interval_s
        values = np.asarray(stats, dtype=np.float64)
        self._sums.ensure_rows(int(rows_a.max()) + 1)
        block_keys, slots = np.divmod(buckets, BUCKETS_PER_BLOCK)
        for key in np.unique(block_keys):
            pick = block_keys == key
            block = self._sums.block(int(key))
            for plane in range(len(STATS)):
                np.add.at(block[plane], (rows_a[pick], slots[pick]), values[pick, plane])

    def reduce(self, rows: list[int]) -> tuple[np.ndarray, pd.DatetimeIndex]:
        """Values ``[T, len(rows), 3]`` (NaN = missing) over the span that these rows cover.

        Block by block into the output, so no second copy of all the sums is ever made.
        """
        self._sums.ensure_rows(max(rows, default=0) + 1)
        observed = {key: self._observed(block[:, rows]) for key, block in self._sums.blocks.items()}
        buckets = [key * BUCKETS_PER_BLOCK + np.flatnonzero(seen) for key, seen in observed.items() if seen.any()]
        if not buckets:
            return np.zeros((0, len(rows), len(FEATURES)), dtype=np.float32), pd.DatetimeIndex([], tz=self.timezone)
        first = min(int(b[0]) for b in buckets)
        last = max(int(b[-1]) for b in buckets)
        values = np.full((last - first + 1, len(rows), len(FEATURES)), np.nan, dtype=np.float32)
        self.flow_scaled = self.flow_too_sparse = 0
        for key, block in self._sums.blocks.items():
            lo = max(first, key * BUCKETS_PER_BLOCK)
            hi = min(last + 1, (key + 1) * BUCKETS_PER_BLOCK)
            if lo >= hi:
                continue
            sums = block[:, rows, lo - key * BUCKETS_PER_BLOCK : hi - key * BUCKETS_PER_BLOCK]
            occupancy = _ratio(sums[_S["occupancy_sum"]], sums[_S["occupancy_n"]])
            values[lo - first : hi - first] = np.stack([self._flow(sums), self._speed(sums), occupancy], axis=-1).transpose(1, 0, 2)
        epochs = self.origin_s + np.arange(first, last + 1) * self.interval_s
        timestamps = pd.DatetimeIndex(pd.to_datetime(epochs, unit="s", utc=True)).tz_convert(self.timezone)
        return values, timestamps

    @staticmethod
    def _observed(sums: np.ndarray) -> np.ndarray:
        """Buckets where any of the rows has a valid value."""
        return (sums[_S["flow_n"]] + sums[_S["speed_n"]] + sums[_S["occupancy_n"]]).sum(axis=0) > 0

    def _flow(self, sums: np.ndarray) -> np.ndarray:
        minutes = self.interval_s / 60
        n = sums[_S["flow_n"]]
        enough = n >= MIN_FLOW_COVERAGE * minutes
        self.flow_scaled += int((enough & (n != minutes)).sum())
        self.flow_too_sparse += int(((n > 0) & ~enough).sum())
        flow = np.full(n.shape, np.nan, dtype=n.dtype)
        flow[enough] = sums[_S["flow_sum"]][enough] * (minutes / n[enough])
        return flow

    @staticmethod
    def _speed(sums: np.ndarray) -> np.ndarray:
        weighted = _ratio(sums[_S["speed_vw_sum"]], sums[_S["speed_w"]])
        plain = _ratio(sums[_S["speed_sum"]], sums[_S["speed_n"]])
        return np.where(sums[_S["speed_w"]] > 0, weighted, plain)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=num.dtype)
    np.divide(num, den, out=out, where=den > 0)
    return out
