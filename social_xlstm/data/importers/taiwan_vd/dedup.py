"""De-duplication of live records by (VDID, link, DataCollectTime), in memory flat in time.

Snapshots polled every minute repeat a record until the detector reports again. Instead of a
set of every key ever seen, each (sensor, minute) cell remembers the second of the first record
in it (``second + 1``; 0 = none yet). A second, different record in the same minute (clock
jitter) is rare, so those few go to a plain set. The result is exact whatever the file order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from social_xlstm.data.importers.taiwan_vd.blocks import RowBlocks, resident_blocks

MINUTES_PER_BLOCK = 1440


class SeenReadings:
    def __init__(self, spill_dir: Path | None = None) -> None:
        self._first_second = RowBlocks(
            1, MINUTES_PER_BLOCK, np.uint8, resident_blocks(MINUTES_PER_BLOCK * 60), spill_dir
        )
        self._more: set[tuple[int, int]] = set()

    def first_time(self, row: int, epoch_s: int) -> bool:
        """True the first time (row, epoch_s) is offered, False for every repeat."""
        minute, second = divmod(epoch_s, 60)
        block_key, slot = divmod(minute, MINUTES_PER_BLOCK)
        self._first_second.ensure_rows(row + 1)
        cells = self._first_second.block(block_key)[0, row]
        mark = cells[slot]
        if mark == 0:
            cells[slot] = second + 1
            return True
        if mark == second + 1:
            return False
        if (row, epoch_s) in self._more:
            return False
        self._more.add((row, epoch_s))
        return True
