"""Arrays of ``[planes, rows, block_len]`` per block of time, grown as rows (sensors) appear.

Both the interval sums and the de-duplication marks need a cell per (sensor, time slot) over a
span of time that is only known at the end. Blocks are allocated when a slot in them is first
touched, and only the ``resident`` most recently used stay in memory: the others wait in a
temporary folder until they are touched again. Snapshots come in time order, so an import
touches the newest one or two blocks, and its memory follows neither the number of records
read nor, past a few blocks, the span of time they cover (a month costs what two days cost).
Files out of time order give the same result, only slower (blocks are read back).
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from social_xlstm.data.importers.taiwan_vd.quality import MAX_COLLECT_LAG_S


def resident_blocks(block_seconds: int) -> int:
    """Blocks to keep in memory: the newest, and enough before it to cover the longest lag a
    record may have behind its snapshot, so that files in time order never read a block back."""
    return 1 + -(-MAX_COLLECT_LAG_S // block_seconds)


class RowBlocks:
    def __init__(self, planes: int, block_len: int, dtype: type, resident: int, spill_dir: Path | None = None):
        self.planes = planes
        self.block_len = block_len
        self.dtype = dtype
        self.rows = 64
        self.resident = resident
        self._blocks: OrderedDict[int, np.ndarray] = OrderedDict()  # least recently used first
        self._spilled: set[int] = set()
        self._spill_parent = spill_dir  # None: the system's temporary folder (TMPDIR)
        self._spill_dir: tempfile.TemporaryDirectory | None = None

    def keys(self) -> list[int]:
        """Every block ever touched, in time order."""
        return sorted({*self._blocks, *self._spilled})

    def ensure_rows(self, n_rows: int) -> None:
        """Make room for ``n_rows`` rows in every block (doubling, so growth is amortised).

        Blocks in memory grow now; spilled blocks grow when they are read back.
        """
        if n_rows <= self.rows:
            return
        while self.rows < n_rows:
            self.rows *= 2
        for key, block in self._blocks.items():
            self._blocks[key] = self._grown(block)

    def block(self, key: int) -> np.ndarray:
        """Block ``key`` to update in place; valid until the next call (which may spill it)."""
        block = self._blocks.get(key)
        if block is not None:
            self._blocks.move_to_end(key)
            return block
        if key in self._spilled:
            block = self.read(key)
            self._spilled.discard(key)
        else:
            block = np.zeros((self.planes, self.rows, self.block_len), dtype=self.dtype)
        self._blocks[key] = block
        while len(self._blocks) > self.resident:
            self._spill(*self._blocks.popitem(last=False))
        return block

    def spill_all(self) -> None:
        """Put every block on disk: once the import is over, blocks are read back one at a time."""
        while self._blocks:
            self._spill(*self._blocks.popitem(last=False))

    def read(self, key: int) -> np.ndarray:
        """Block ``key`` for reading only: from memory, or loaded from disk without evicting any."""
        block = self._blocks.get(key)
        if block is not None:
            return block
        if key not in self._spilled:
            raise KeyError(key)
        return self._grown(np.load(self._path(key)))

    def _grown(self, block: np.ndarray) -> np.ndarray:
        if block.shape[1] == self.rows:
            return block
        grown = np.zeros((self.planes, self.rows, self.block_len), dtype=self.dtype)
        grown[:, : block.shape[1]] = block
        return grown

    def _spill(self, key: int, block: np.ndarray) -> None:
        if self._spill_dir is None:  # removed with this object, or at exit
            self._spill_dir = tempfile.TemporaryDirectory(prefix=".social-xlstm-import-", dir=self._spill_parent)
        np.save(self._path(key), block)
        self._spilled.add(key)

    def _path(self, key: int) -> Path:
        return Path(self._spill_dir.name) / f"block-{key}.npy"
