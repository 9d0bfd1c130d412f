"""Per-(sensor, interval) sums of readings, and their reduction to flow, speed and occupancy.

The grid is anchored at local midnight of 2000-01-01 in the output time zone and steps by a
fixed duration, so it is regular in absolute time (what ``Dataset`` requires) and its labels
fall on round local times. A reading belongs to the interval holding its DataCollectTime.

Flow and missing minutes: the feed reports one reading per minute, so an interval of m minutes
should hold m readings. Flow is the mean per-minute volume of the readings whose volumes are all
valid, times m: exactly the observed sum when all m are there, scaled up when some are missing,
and missing (NaN) when fewer than ``min_flow_coverage`` (default ``MIN_FLOW_COVERAGE``) of the
m minutes are valid, because an extrapolation from one or two minutes is a guess, not a count.
A feed polled every 5 minutes holds 1 minute in 5 and has no flow at all by default; a user who
accepts that guess lowers the share (0.2: the minute's volume times 5).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.data.importers.taiwan_vd.blocks import RowBlocks, resident_blocks
from social_xlstm.data.importers.taiwan_vd.quality import STATS
from social_xlstm.data.readings_table import steps_per_group

BUCKETS_PER_BLOCK = 512
MIN_FLOW_COVERAGE = 0.5
FEATURES = ("flow", "speed", "occupancy")
GRID_ANCHOR = "2000-01-01"
_S = {name: i for i, name in enumerate(STATS)}
_COUNTS = [_S["flow_n"], _S["speed_n"], _S["occupancy_n"]]  # a bucket holds readings when any is > 0


@dataclass(frozen=True)
class Span:
    """The interval buckets that hold readings, and counts of flow values scaled up or dropped."""

    first: int
    last: int
    flow_scaled: int
    flow_too_sparse: int
    filled: int  # buckets holding a reading of any of the rows

    @property
    def steps(self) -> int:
        return self.last - self.first + 1


class IntervalSums:
    def __init__(
        self,
        interval_s: int,
        timezone: str,
        spill_dir: Path | None = None,
        min_flow_coverage: float = MIN_FLOW_COVERAGE,
    ):
        self.interval_s = interval_s
        self.minutes = interval_s / 60  # readings an interval should hold: the feed reports every minute
        self.min_flow_coverage = min_flow_coverage
        self.timezone = timezone
        self.origin_s = pd.Timestamp(GRID_ANCHOR, tz=timezone).value // 10**9
        # float32 halves the memory of a long import; sums of volumes stay exact below 2**24
        self._sums = RowBlocks(
            len(STATS), BUCKETS_PER_BLOCK, np.float32, resident_blocks(BUCKETS_PER_BLOCK * interval_s), spill_dir
        )

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

    def survey(self, rows: list[int]) -> Span | None:
        """Where the readings of ``rows`` lie and how complete their flow is: one pass over the sums.

        Called once every reading is in: the sums go to disk, and from here on only one block
        is in memory at a time, however long the span.
        """
        self._sums.ensure_rows(max(rows, default=0) + 1)
        self._sums.spill_all()
        first = last = None
        scaled = too_sparse = filled = 0
        for key in self._sums.keys():
            flow_n, speed_n, occupancy_n = self._sums.read(key)[_COUNTS][:, rows]
            seen = np.flatnonzero((flow_n + speed_n + occupancy_n).sum(axis=0) > 0)
            filled += len(seen)
            if len(seen):
                first = key * BUCKETS_PER_BLOCK + int(seen[0]) if first is None else first
                last = key * BUCKETS_PER_BLOCK + int(seen[-1])
            enough = self._enough_minutes(flow_n)
            scaled += int((enough & (flow_n != self.minutes)).sum())
            too_sparse += int(((flow_n > 0) & ~enough).sum())
        return None if first is None else Span(first, last, scaled, too_sparse, filled)

    def chunks(self, rows: list[int], span: Span | None) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray]]:
        """Values ``[steps, len(rows), 3]`` (NaN = missing) over ``span``, in time order.

        One block of sums is read at a time and handed out a parquet row group at a time, so
        memory follows neither the span nor the block length.
        """
        if span is None:
            yield pd.DatetimeIndex([], tz=self.timezone), np.zeros((0, len(rows), len(FEATURES)), dtype=np.float32)
            return
        touched = set(self._sums.keys())
        steps = steps_per_group(len(rows))
        for key in range(span.first // BUCKETS_PER_BLOCK, span.last // BUCKETS_PER_BLOCK + 1):
            offset = key * BUCKETS_PER_BLOCK
            block = self._sums.read(key) if key in touched else None  # None: no snapshot reached it
            for lo in range(max(span.first, offset), min(span.last + 1, offset + BUCKETS_PER_BLOCK), steps):
                hi = min(lo + steps, span.last + 1, offset + BUCKETS_PER_BLOCK)
                if block is None:
                    yield (
                        self._timestamps(lo, hi),
                        np.full((hi - lo, len(rows), len(FEATURES)), np.nan, dtype=np.float32),
                    )
                    continue
                sums = block[:, rows, lo - offset : hi - offset]
                occupancy = _ratio(sums[_S["occupancy_sum"]], sums[_S["occupancy_n"]])
                yield (
                    self._timestamps(lo, hi),
                    np.stack([self._flow(sums), self._speed(sums), occupancy], axis=-1).transpose(1, 0, 2),
                )
            block = None  # freed before the next one is read

    def bucket_start(self, bucket: int) -> pd.Timestamp:
        """When interval ``bucket`` starts, in the dataset's time zone."""
        return self._timestamps(bucket, bucket + 1)[0]

    def _timestamps(self, lo: int, hi: int) -> pd.DatetimeIndex:
        epochs = self.origin_s + np.arange(lo, hi) * self.interval_s
        return pd.DatetimeIndex(pd.to_datetime(epochs, unit="s", utc=True)).tz_convert(self.timezone)

    def _enough_minutes(self, n: np.ndarray) -> np.ndarray:
        return n >= self.min_flow_coverage * self.minutes

    def _flow(self, sums: np.ndarray) -> np.ndarray:
        n = sums[_S["flow_n"]]
        enough = self._enough_minutes(n)
        flow = np.full(n.shape, np.nan, dtype=n.dtype)
        flow[enough] = sums[_S["flow_sum"]][enough] * (self.minutes / n[enough])
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
