"""Arrays of ``[planes, rows, block_len]`` per block of time, grown as rows (sensors) appear.

Both the interval sums and the de-duplication marks need a cell per (sensor, time slot) over a
span of time that is only known at the end. Blocks are allocated when a slot in them is first
touched, so memory follows the span actually covered, never the number of records read.
"""

from __future__ import annotations

import numpy as np


class RowBlocks:
    def __init__(self, planes: int, block_len: int, dtype: type):
        self.planes = planes
        self.block_len = block_len
        self.dtype = dtype
        self.rows = 64
        self.blocks: dict[int, np.ndarray] = {}

    def ensure_rows(self, n_rows: int) -> None:
        """Make room for ``n_rows`` rows in every block (doubling, so growth is amortised)."""
        if n_rows <= self.rows:
            return
        while self.rows < n_rows:
            self.rows *= 2
        for key, block in self.blocks.items():
            grown = np.zeros((self.planes, self.rows, self.block_len), dtype=self.dtype)
            grown[:, : block.shape[1]] = block
            self.blocks[key] = grown

    def block(self, key: int) -> np.ndarray:
        block = self.blocks.get(key)
        if block is None:
            block = self.blocks[key] = np.zeros((self.planes, self.rows, self.block_len), dtype=self.dtype)
        return block
