"""Import METR-LA / PEMS-BAY as released with DCRNN (Li et al., ICLR 2018).

The readings are a pandas HDF5 file (``DataFrame.to_hdf``; key ``df`` for METR-LA, the only key
in PEMS-BAY's file) with a naive DatetimeIndex and one column per sensor id. In that release a
0 means the sensor reported nothing, so 0 becomes missing.

The graph comes from the distances CSV ``from, to, cost`` (road distance in metres), read as
DCRNN's ``gen_adj_mx.py`` reads it: rows naming sensors outside the readings are skipped (the
published file covers every detector of the region); each pair keeps its last listed distance
d; its weight is the Gaussian kernel exp(-(d / sigma)^2), sigma = the standard deviation of
those distances (self-pairs included), and pairs whose weight is below 0.1 are dropped. The
weights therefore equal DCRNN's ``adj_mx`` entries; self-loops are not stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.data.dataset import Dataset
from social_xlstm.data.importers.csv_tables import (
    as_float32,
    edge_frame,
    read_edge_list,
    read_sensor_table,
    require_file,
)
from social_xlstm.data.importers.provenance import table_meta
from social_xlstm.data.importers.timeline import check_timezone, localise, place_on_grid, regular_grid
from social_xlstm.errors import InputError

__all__ = ["import_metr_h5", "gaussian_kernel_edges"]

SOURCE = (
    "METR-LA / PEMS-BAY pandas HDF5 (metr-h5), DCRNN release: Li et al., 'Diffusion Convolutional "
    "Recurrent Neural Network: Data-Driven Traffic Forecasting', ICLR 2018, arXiv:1707.01926 "
    "(github.com/liyaguang/DCRNN)"
)
LICENCE = (
    "unknown (no licence is stated for the data; METR-LA comes from LA Metro loop detectors, "
    "PEMS-BAY from Caltrans PeMS)"
)
MISSING_CONVENTION = (
    "0 means missing (the release writes 0 where a sensor reported nothing) and becomes null; "
    "NaN in the file is missing too"
)
KERNEL_THRESHOLD = 0.1


def _read_frame(path: Path) -> pd.DataFrame:
    """The one DataFrame in the store (or the one under key 'df')."""
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = store.keys()
            key = keys[0] if len(keys) == 1 else "/df" if "/df" in keys else None
            if key is None:
                raise InputError(path, f"holds {', '.join(keys) or 'nothing'}; expected one DataFrame (key 'df')")
            frame = store[key]
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise InputError(path, f"not a readable pandas HDF5 file ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
        raise InputError(path, "expected a DataFrame with a DatetimeIndex and one column per sensor id")
    if frame.empty:
        raise InputError(path, "empty result: no readings in the file")
    if frame.columns.nlevels > 1:
        raise InputError(path, f"columns have {frame.columns.nlevels} levels; expected one column per sensor id")
    ids = frame.columns.astype(str).str.strip()
    if ids.duplicated().any():
        raise InputError(path, f"sensor id {ids[ids.duplicated()][0]!r} appears twice")
    non_numeric = [column for column in frame.columns if not pd.api.types.is_numeric_dtype(frame[column])]
    if non_numeric:
        raise InputError(path, f"column {str(non_numeric[0])!r} is not numeric")
    frame.columns = ids
    return frame


def gaussian_kernel_edges(path: str | Path, sensor_ids: list[str]) -> tuple[pd.DataFrame, dict]:
    """DCRNN's thresholded Gaussian-kernel graph from a ``from, to, cost`` CSV (see module doc)."""
    path = require_file(path)
    listed = read_edge_list(path, ("cost",))
    inside = listed["from"].isin(set(sensor_ids)) & listed["to"].isin(set(sensor_ids))
    pairs = listed[inside].drop_duplicates(["from", "to"], keep="last")
    if pairs.empty:
        raise InputError(
            path, f"none of its {len(listed)} rows joins two sensors of the readings (are these the right distances?)"
        )
    sigma = float(pairs["cost"].std(ddof=0))
    if sigma == 0:
        raise InputError(path, "every listed distance is the same; the Gaussian kernel needs distances that vary")
    weight = np.exp(-np.square(pairs["cost"].to_numpy() / sigma))
    kept = pairs[weight >= KERNEL_THRESHOLD]
    edges = edge_frame(
        kept["from"], kept["to"], distance_m=kept["cost"].to_numpy(), weight=weight[weight >= KERNEL_THRESHOLD]
    )
    info = {
        "edge_weight": (
            f"exp(-(d/sigma)^2), sigma = {sigma:.6g} m (std of the listed distances); "
            f"weights below {KERNEL_THRESHOLD} dropped (DCRNN)"
        ),
        "distance_rows_outside_dataset": int((~inside).sum()),
    }
    return edges, info


def import_metr_h5(
    h5_path: str | Path,
    locations_csv: str | Path,
    *,
    distances_csv: str | Path | None = None,
    feature: str = "speed",
    timezone: str = "America/Los_Angeles",
    name: str | None = None,
) -> Dataset:
    """Read the HDF5 readings (0 -> NaN), coordinates matched by sensor id, and the kernel graph."""
    h5_path = require_file(h5_path)
    check_timezone(timezone)
    frame = _read_frame(h5_path)
    sensor_ids = frame.columns.tolist()
    if frame.index.tz is None:
        times = localise(frame.index, timezone, str(h5_path))
        stamps, clock_note = times.stamps, times.note
    else:
        stamps, clock_note = frame.index.tz_convert(timezone), None
    grid = regular_grid(stamps, str(h5_path), first_line=None, columns=len(sensor_ids))
    values = as_float32(frame.to_numpy())  # a float32 frame's own read-only block: not changed in place
    del frame
    values = np.where(values == 0, np.float32(np.nan), values)
    values = place_on_grid(values, grid)[:, :, None]
    sensors, unlocated, _ = read_sensor_table(locations_csv, sensor_ids)
    edges, graph_info = (None, {}) if distances_csv is None else gaussian_kernel_edges(distances_csv, sensor_ids)
    meta = table_meta(
        format_name="metr-h5",
        source=SOURCE,
        licence=LICENCE,
        step=grid.step,
        units={feature: "mph" if feature == "speed" else "unknown"},
        missing_value_convention=MISSING_CONVENTION,
        missing_values=[0.0],
        inputs={"readings": h5_path, "locations": locations_csv, "distances": distances_csv},
        name=name,
        steps_inserted_as_missing=grid.inserted,
        sensors_without_coordinates=unlocated,
        **graph_info,
        **({"clock": clock_note} if clock_note else {}),
    )
    dataset = Dataset(
        values=values, timestamps=grid.stamps, features=[feature], sensors=sensors, edges=edges, meta=meta
    )
    dataset.validate(h5_path)
    return dataset
