"""Import PEMS03/04/07/08 as released with ASTGCN (Guo et al., AAAI 2019) and STSGCN (Song et al., AAAI 2020).

Readings are an ``.npz`` with key ``data`` of shape [T, N, C]: C = 3 is flow, occupancy, speed
(PEMS04, PEMS08), C = 1 is flow (PEMS03, PEMS07). Flow is a vehicle count per step, so 0 is a
real reading, never missing. The release has no timestamps (the start date comes from the
papers) and no coordinates. The distance CSV ``from, to, cost`` names array indices, except
PEMS03 whose CSV names real station ids listed, in array order, in a separate text file.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
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
    require_known_ends,
    sensors_without_coordinates,
)
from social_xlstm.data.importers.provenance import table_meta
from social_xlstm.data.importers.timeline import MAX_GRID_VALUES, grid_from_start, interval_text, parse_interval
from social_xlstm.errors import InputError

__all__ = ["import_pems_npz"]

SOURCE = (
    "PEMS03/04/07/08 npz (pems-npz), ASTGCN / STSGCN release: Guo et al., 'Attention Based Spatial-Temporal "
    "Graph Convolutional Networks for Traffic Flow Forecasting', AAAI 2019 (github.com/Davidham3/ASTGCN); "
    "Song et al., 'Spatial-Temporal Synchronous Graph Convolutional Networks', AAAI 2020 "
    "(github.com/Davidham3/STSGCN); "
    "data from Caltrans PeMS (pems.dot.ca.gov)"
)
LICENCE = "unknown (Caltrans PeMS data; neither Caltrans nor the ASTGCN/STSGCN repositories state a licence for it)"
MISSING_CONVENTION = "0 is a real reading (a count of 0 vehicles); only NaN in the array is missing"
DEFAULT_FEATURES = {3: ("flow", "occupancy", "speed"), 1: ("flow",)}


def _units(features: Sequence[str], step: pd.Timedelta) -> dict[str, str]:
    known = {"flow": f"veh/{interval_text(step)}", "occupancy": "fraction of time occupied (0-1)", "speed": "mph"}
    return {feature: known.get(feature, "unknown") for feature in features}


def _stored_shape(archive: np.lib.npyio.NpzFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an archive's member declares, read from its header alone: a small
    compressed file can declare an array of terabytes."""
    with archive.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
    return shape, dtype


def _read_array(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InputError(path, "expected an .npz with key 'data'; found a bare array (.npy)")
        with loaded as archive:
            if "data" not in archive.files:
                raise InputError(path, f"expected an .npz with key 'data'; found {', '.join(archive.files)}")
            shape, dtype = _stored_shape(archive, "data")
            if np.prod(shape, dtype=np.float64) > MAX_GRID_VALUES:
                raise InputError(
                    path,
                    f"'data' declares shape {shape}; the limit is {MAX_GRID_VALUES:,} values (about 2 GB as a dataset)",
                )
            data = archive["data"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(path, f"not a readable .npz file ({' '.join(str(exc).split())[:200]})") from None
    if data.ndim != 3 or 0 in data.shape:
        raise InputError(path, f"'data' has shape {data.shape}; expected time x sensor x channel, none empty")
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise InputError(path, f"'data' holds {data.dtype}; expected real numbers")
    return data


def _feature_names(features: Sequence[str], channels: int) -> list[str]:
    if not features:
        if channels not in DEFAULT_FEATURES:
            raise InputError("--feature", f"the array has {channels} channels; name each one with --feature (in order)")
        return list(DEFAULT_FEATURES[channels])
    if len(features) != channels:
        raise InputError("--feature", f"{len(features)} names given for {channels} channels")
    if len(set(features)) != len(features):
        raise InputError("--feature", "each channel needs a different name")
    return list(features)


def _read_sensor_ids(path: str | Path | None, n: int) -> list[str]:
    """Ids in array order from a text file (one per line, or comma separated); array indices otherwise."""
    if path is None:
        return [str(i) for i in range(n)]
    path = require_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start}); expected sensor ids") from None
    ids = [token for token in re.split(r"[\s,]+", text) if token]
    if len(ids) != n:
        raise InputError(path, f"{len(ids)} sensor ids; the array has {n} sensors")
    if len(set(ids)) != n:
        raise InputError(path, "a sensor id is listed twice")
    return ids


def _index_ends(listed: pd.DataFrame, n: int, path: Path) -> pd.DataFrame:
    """Without an ids file the ends are array indices 0..N-1: check them and use them as ids."""
    for end in ("from", "to"):
        index = pd.to_numeric(listed[end], errors="coerce")
        bad = ~(index.notna() & (index == index.round()) & (index >= 0) & (index < n))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                path,
                f"column {end!r}: {listed[end].iloc[row]!r} is not a sensor index 0..{n - 1} "
                "(PEMS03 needs --sensor-ids)",
            )
        listed[end] = index.astype(np.int64).astype(str)
    return listed


def _read_edges(path: str | Path, sensor_ids: list[str], by_index: bool) -> pd.DataFrame:
    path = require_file(path)
    listed = read_edge_list(path, ("cost", "distance"))
    if by_index:
        listed = _index_ends(listed, len(sensor_ids), path)
    else:
        require_known_ends(listed, set(sensor_ids), path)
    cost = listed["cost"] if "cost" in listed else listed["distance"]
    return edge_frame(listed["from"], listed["to"], cost=cost.to_numpy(), weight=np.ones(len(listed)))


def import_pems_npz(
    npz_path: str | Path,
    distances_csv: str | Path,
    *,
    start: str,
    interval: str = "5min",
    features: Sequence[str] = (),
    sensor_ids_file: str | Path | None = None,
    locations_csv: str | Path | None = None,
    timezone: str = "America/Los_Angeles",
    name: str | None = None,
) -> Dataset:
    """Read the [T, N, C] array as published (0 kept), the listed road links as edges.

    Sensor ids are the station ids of ``sensor_ids_file`` or else the array indices "0".."N-1".
    Edges keep the release's ``cost`` (its unit is not documented) and weight 1, the binary
    connectivity the ASTGCN/STSGCN papers use.
    """
    npz_path = require_file(npz_path)
    step = parse_interval(interval)
    data = _read_array(npz_path)
    steps, n, channels = data.shape
    names = _feature_names(features, channels)
    timestamps = grid_from_start(start, interval, steps, timezone)
    sensor_ids = _read_sensor_ids(sensor_ids_file, n)
    edges = _read_edges(distances_csv, sensor_ids, by_index=sensor_ids_file is None)
    if locations_csv is None:
        sensors, unlocated = sensors_without_coordinates(sensor_ids), n
    else:
        sensors, unlocated, _ = read_sensor_table(locations_csv, sensor_ids)
    meta = table_meta(
        format_name="pems-npz",
        source=SOURCE,
        licence=LICENCE,
        step=step,
        units=_units(names, step),
        missing_value_convention=MISSING_CONVENTION,
        missing_values=[],
        inputs={
            "readings": npz_path,
            "distances": distances_csv,
            "sensor_ids": sensor_ids_file,
            "locations": locations_csv,
        },
        name=name,
        edge_weight=(
            "1 for every listed link (binary connectivity, as in ASTGCN/STSGCN); "
            "'cost' is the release's distance, unit undocumented"
        ),
        sensors_without_coordinates=unlocated,
    )
    dataset = Dataset(
        values=as_float32(data),
        timestamps=timestamps,
        features=names,
        sensors=sensors,
        edges=edges,
        meta=meta,
    )
    dataset.validate(npz_path)
    return dataset
