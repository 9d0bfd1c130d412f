"""The long readings table of readings.parquet, to and from the dense ``[T, N, F]`` array.

On disk a dataset's readings are one row per (timestamp, sensor) with a column per feature;
in memory they are dense. Both directions work a slice of time or a row group at a time, so
neither ever holds the whole long table (17 M rows for a month of 2,000 VDs at 5 minutes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from social_xlstm.errors import InputError

# rows per parquet row group written: bounds the writer's temporaries (about 60 MiB)
ROWS_PER_GROUP = 2**18


def steps_per_group(sensors: int) -> int:
    """Time steps per slice handed to the writer, so that a row group holds about ROWS_PER_GROUP rows."""
    return max(1, ROWS_PER_GROUP // max(1, sensors))


def long_table(stamps: pd.DatetimeIndex, values: np.ndarray, sensor_ids: np.ndarray, features: list[str]) -> pa.Table:
    """Rows of (timestamp, sensor_id, one column per feature) for a slice of the dense array; NaN -> null."""
    t, n, _ = values.shape
    columns = {
        "timestamp": pa.array(np.repeat(stamps.as_unit("ns").asi8, n), type=pa.timestamp("ns", tz=str(stamps.tz))),
        "sensor_id": pa.array(np.tile(sensor_ids, t), type=pa.string()),
    }
    for f, name in enumerate(features):
        flat = values[:, :, f].reshape(-1)
        columns[name] = pa.array(flat, mask=np.isnan(flat), type=pa.float32())
    return pa.table(columns)


def read_dense(where: Path, features: list[str], sensor_pos: pd.Index) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The readings file as the dense ``[T, N, F]`` array (rows in ``sensor_pos`` order) and its times.

    Two passes over the row groups (the time grid first, then the values), so only the dense
    array and one row group are ever in memory: a month of 2,000 VDs holds 17 M rows, which
    pandas needed 2.8 GiB to read whole (docs/benchmarks.md, "Dataset directory").
    """
    with pq.ParquetFile(where, read_dictionary=["sensor_id"]) as readings:
        return _read_dense(readings, where, features, sensor_pos)


def _read_dense(
    readings: pq.ParquetFile, where: Path, features: list[str], sensor_pos: pd.Index
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    schema = readings.schema_arrow
    for column in ("timestamp", "sensor_id", *features):
        if column not in schema.names:
            raise InputError(where, f"missing column '{column}'")
    stamp_type = schema.field("timestamp").type
    if not pa.types.is_timestamp(stamp_type) or stamp_type.tz is None:
        raise InputError(where, f"column 'timestamp' must be time-zone aware timestamps, got {stamp_type}")
    groups = range(readings.num_row_groups)
    grid = np.unique(
        np.concatenate(
            [
                np.unique(_nanoseconds(readings.read_row_group(i, columns=["timestamp"]).column(0), where))
                for i in groups
            ]
            or [np.zeros(0, dtype=np.int64)]
        )
    )
    values = np.full((len(grid), len(sensor_pos), len(features)), np.nan, dtype=np.float32)
    for i in groups:
        for batch in readings.read_row_group(i, columns=["timestamp", "sensor_id", *features]).to_batches():
            t_idx = np.searchsorted(grid, _nanoseconds(batch.column(0), where))
            n_idx = _sensor_positions(batch.column(1), sensor_pos, where)
            for f, name in enumerate(features):
                values[t_idx, n_idx, f] = batch.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
    timestamps = pd.DatetimeIndex(pd.to_datetime(grid, unit="ns", utc=True)).tz_convert(stamp_type.tz)
    return values, timestamps


def _nanoseconds(stamps: pa.Array | pa.ChunkedArray, where: Path) -> np.ndarray:
    if stamps.null_count:
        raise InputError(where, "column 'timestamp' has a null; every reading needs its time")
    return stamps.to_numpy().astype("datetime64[ns]").view(np.int64)


def _sensor_positions(ids: pa.Array, sensor_pos: pd.Index, where: Path) -> np.ndarray:
    """Rows of sensors.parquet for a batch of sensor ids (dictionary-encoded: one lookup per id)."""
    if not pa.types.is_dictionary(ids.type):
        ids = pc.dictionary_encode(ids)
    if ids.null_count:
        raise InputError(where, "column 'sensor_id' has a null; every reading needs its sensor")
    names = ids.dictionary.cast(pa.string()).to_numpy(zero_copy_only=False)
    positions = sensor_pos.get_indexer(names)
    codes = ids.indices.to_numpy()
    unknown = np.flatnonzero(positions[codes] < 0)
    if len(unknown):
        raise InputError(where, f"sensor_id {names[codes[unknown[0]]]!r} is not in sensors.parquet")
    return positions[codes]
