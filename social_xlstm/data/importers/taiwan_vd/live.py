"""Live readings in, interval sums out: plausibility, id normalisation, de-duplication.

Live records are keyed by what the live feed says, (normalised VDID, LinkID), because whether
a key matches a detector is known only once every VDList version has been read.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from social_xlstm.data.importers.taiwan_vd.accumulate import IntervalSums
from social_xlstm.data.importers.taiwan_vd.dedup import SeenReadings
from social_xlstm.data.importers.taiwan_vd.ids import normalise_vdid
from social_xlstm.data.importers.taiwan_vd.quality import MAX_COLLECT_LAG_S, MISSING, STATS
from social_xlstm.data.importers.taiwan_vd.summaries import LiveSummary

ROWS_PER_BATCH = 65536


class LiveReadings:
    """A row per (normalised VDID, LinkID), the readings kept for it, and why others were not."""

    def __init__(self, sums: IntervalSums, spill_dir: Path | None = None):
        self.sums = sums
        self.seen = SeenReadings(spill_dir)
        self.rows: dict[tuple[str, str], int] = {}
        self.records_per_row: list[int] = []
        self.normalised: dict[str, str] = {}
        self.missing = np.zeros(len(MISSING), dtype=np.int64)

    def add(self, summary: LiveSummary, tally: Counter) -> None:
        rows, epochs, stats = [], [], []
        for vdid, link_id, collect_time, reading in summary.rows:
            tally["live_records_read"] += 1
            if summary.update_time is not None and abs(collect_time - summary.update_time) > MAX_COLLECT_LAG_S:
                tally["live_records_implausible_time"] += 1
                continue
            if reading is None:  # a lane volume no lane can carry (``quality.MAX_LANE_VOLUME``)
                tally["live_records_implausible_volume"] += 1
                continue
            norm = self.normalised.get(vdid)
            if norm is None:
                norm = self.normalised[vdid] = normalise_vdid(vdid)
            row = self.rows.get((norm, link_id))
            if row is None:
                row = self.rows[norm, link_id] = len(self.records_per_row)
                self.records_per_row.append(0)
            if not self.seen.first_time(row, collect_time):
                tally["live_records_deduplicated"] += 1
                continue
            self.records_per_row[row] += 1
            rows.append(row)
            epochs.append(collect_time)
            stats.append(reading)
            if len(rows) == ROWS_PER_BATCH:
                self._flush(rows, epochs, stats)
                rows, epochs, stats = [], [], []
        self._flush(rows, epochs, stats)

    def _flush(self, rows: list[int], epochs: list[int], stats: list[tuple]) -> None:
        if rows:
            values = np.asarray(stats, dtype=np.float64)
            self.sums.add(rows, epochs, values[:, : len(STATS)])
            self.missing += values[:, len(STATS) :].sum(axis=0).astype(np.int64)
