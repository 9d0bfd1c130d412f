"""Import T-GCN style data (Los-loop, SZ-taxi): a wide values CSV plus an N x N adjacency.

The values file has a header row of sensor ids and one row per time step, with no timestamps:
the time axis comes from ``start`` and ``interval``. The adjacency is either T-GCN's CSV (no
header, the sensors in the same order; streamed block by block into a sparse edge list, so an
N x N matrix is never held whole; symmetric for Los-loop) or, for a ``.pkl`` file, DCRNN's
directed ``adj_mx.pkl`` of the same sensors, whose one-way pairs say which sensor is upstream.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from social_xlstm.data.dataset import Dataset
from social_xlstm.data.importers.csv_tables import (
    edge_frame,
    numeric_matrix,
    read_header,
    read_sensor_table,
    read_table,
    require_file,
    sensors_without_coordinates,
)
from social_xlstm.data.importers.dcrnn_pickle import read_dcrnn_adjacency
from social_xlstm.data.importers.provenance import table_meta
from social_xlstm.data.importers.timeline import grid_from_start, parse_interval
from social_xlstm.errors import InputError

__all__ = ["import_tgcn_csv", "read_adjacency_edges"]

SOURCE = (
    "T-GCN wide CSV (tgcn-csv): Zhao et al., 'T-GCN: A Temporal Graph Convolutional Network for "
    "Traffic Prediction', IEEE T-ITS 2019, arXiv:1811.05320 (github.com/lehaifeng/T-GCN)"
)
LICENCE = (
    "unknown (the T-GCN repository states no licence; Los-loop is a subset of METR-LA, whose data licence is unstated)"
)
EDGE_WEIGHT = {
    "csv": "adjacency value as published",
    "pkl": (
        "DCRNN adj_mx as published: exp(-(d/sigma)^2) of the road distance src -> dst "
        "(directed: a pair given one way has src upstream)"
    ),
}
MISSING_CONVENTION = (
    "a blank cell is missing; every number, 0 included, is kept as published "
    "(the Los-loop publishers interpolated gaps before release)"
)
ADJACENCY_BLOCK_BYTES = 1 << 22


def read_adjacency_edges(path: str | Path, sensor_ids: list[str]) -> pd.DataFrame:
    """Edges (src, dst, weight) for every nonzero off-diagonal entry of a headerless N x N CSV."""
    path = require_file(path)
    n = len(sensor_ids)
    names = [f"c{j}" for j in range(n)]
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, block_size=ADJACENCY_BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.float64() for name in names}),
        )
        src, dst, weight = [], [], []
        rows = 0
        for batch in reader:
            block = (
                np.column_stack([column.to_numpy(zero_copy_only=False) for column in batch.columns])
                if batch.num_rows
                else np.empty((0, n))
            )
            if not np.isfinite(block).all() or (block < 0).any():
                line = rows + int(np.flatnonzero(~(np.isfinite(block) & (block >= 0)).all(axis=1))[0]) + 1
                raise InputError(path, f"line {line}: expected {n} non-negative weights (blank, NaN or negative found)")
            i, j = np.nonzero(block)
            src.append(i + rows)
            dst.append(j)
            weight.append(block[i, j])
            rows += batch.num_rows
    except pa.ArrowInvalid as exc:
        raise InputError(
            path, f"expected an {n} x {n} matrix of numbers without header ({' '.join(str(exc).split())})"
        ) from None
    if rows != n:
        raise InputError(path, f"{rows} rows; expected {n} x {n}, one row per sensor of the readings")
    ids = np.asarray(sensor_ids, dtype=object)
    return edge_frame(ids[np.concatenate(src)], ids[np.concatenate(dst)], weight=np.concatenate(weight))


def import_tgcn_csv(
    speed_csv: str | Path,
    adjacency_csv: str | Path,
    *,
    locations_csv: str | Path | None = None,
    start: str,
    interval: str,
    timezone: str = "UTC",
    feature: str = "speed",
    units: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Read a T-GCN dataset; values are exactly the CSV's, blank cells become NaN.

    Sensors are matched to ``locations_csv`` by id (not row order); without it, coordinates
    are NaN. ``units`` (e.g. mph for Los-loop, km/h for SZ-taxi) is recorded in meta.json.
    """
    speed_csv = require_file(speed_csv)
    step = parse_interval(interval)
    sensor_ids = read_header(speed_csv)
    table = read_table(speed_csv)
    if table.num_rows == 0:
        raise InputError(speed_csv, "no data rows under the header")
    values = numeric_matrix(table, sensor_ids, speed_csv)[:, :, None]
    del table
    timestamps = grid_from_start(start, interval, len(values), timezone)
    directed = Path(adjacency_csv).suffix.lower() == ".pkl"
    edges = (read_dcrnn_adjacency if directed else read_adjacency_edges)(adjacency_csv, sensor_ids)
    if locations_csv is None:
        sensors, unlocated = sensors_without_coordinates(sensor_ids), len(sensor_ids)
    else:
        sensors, unlocated, _ = read_sensor_table(locations_csv, sensor_ids)
    meta = table_meta(
        format_name="tgcn-csv",
        source=SOURCE,
        licence=LICENCE,
        step=step,
        units={feature: units or "unknown"},
        missing_value_convention=MISSING_CONVENTION,
        missing_values=[],
        inputs={"readings": speed_csv, "adjacency": adjacency_csv, "locations": locations_csv},
        name=name,
        edge_weight=EDGE_WEIGHT["pkl" if directed else "csv"],
        sensors_without_coordinates=unlocated,
    )
    dataset = Dataset(values=values, timestamps=timestamps, features=[feature], sensors=sensors, edges=edges, meta=meta)
    dataset.validate(speed_csv)
    return dataset
