"""predictions.parquet, written a batch of windows at a time.

The long table has a row per (window, horizon, sensor, target) whose truth was observed: 80 M
rows for the test split of a month of 2,000 VDs. Built whole in pandas it took more than 10 GiB,
so it is appended in row groups as the forecasts come, and never exists whole in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from social_xlstm.data.readings_table import ROWS_PER_GROUP
from social_xlstm.evaluation.forecasters import MODEL_NAME


class PredictionsWriter:
    """Rows of origin timestamp, sensor_id, horizon, target, unit, y_true, y_pred (the model) and
    one ``y_pred_<name>`` column per baseline, in the order the windows come."""

    def __init__(
        self,
        path: Path,
        timestamps: pd.DatetimeIndex,
        sensor_ids: list[str],
        targets: list[str],
        forecasters: list[str],
        units: dict[str, str] | None = None,
    ):
        self.timestamps = timestamps.as_unit("ns")
        self._ids = pa.array(list(sensor_ids), type=pa.string())
        self._targets = pa.array(list(targets), type=pa.string())
        self._units = pa.array([(units or {}).get(t) or "" for t in targets], type=pa.string())
        self.baselines = [name for name in forecasters if name != MODEL_NAME]
        self.schema = pa.schema(
            [
                ("origin", pa.timestamp("ns", tz=str(timestamps.tz))),
                ("sensor_id", pa.string()),
                ("horizon", pa.int16()),
                ("target", pa.dictionary(pa.int8(), pa.string())),
                ("unit", pa.dictionary(pa.int8(), pa.string())),
                ("y_true", pa.float32()),
                ("y_pred", pa.float32()),
                *[(f"y_pred_{name}", pa.float32()) for name in self.baselines],
            ]
        )
        self._writer = pq.ParquetWriter(path, self.schema)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, batch: dict) -> None:
        """One batch of windows: ``y_true``, ``mask`` and each forecast ``[B, H, N, G]``, ``origin`` [B].

        Built in arrow from index arrays (no pandas frame, no Python string per row).
        """
        window, horizon, sensor, target = np.nonzero(batch["mask"])  # C order: the cells' order in the arrays
        keep = batch["mask"].reshape(-1)
        columns = [
            pa.array(self.timestamps.asi8[batch["origin"][window]], type=self.schema.field("origin").type),
            self._ids.take(pa.array(sensor)),
            pa.array((horizon + 1).astype(np.int16)),
            pa.DictionaryArray.from_arrays(pa.array(target.astype(np.int8)), self._targets),
            pa.DictionaryArray.from_arrays(pa.array(target.astype(np.int8)), self._units),
            pa.array(batch["y_true"].reshape(-1)[keep].astype(np.float32)),
            pa.array(batch["forecasts"][MODEL_NAME].reshape(-1)[keep].astype(np.float32)),
            *[pa.array(batch["forecasts"][name].reshape(-1)[keep].astype(np.float32)) for name in self.baselines],
        ]
        self._pending.append(pa.Table.from_arrays(columns, schema=self.schema))
        self._pending_rows += len(window)
        if self._pending_rows >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0

    def __enter__(self) -> PredictionsWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self._flush()
        self._writer.close()
