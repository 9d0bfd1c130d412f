"""What the two importers of a user's own CSV tables share (wide-csv, long-csv): the edges
file, the missing-value convention and the dataset they build from a filled grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.data.dataset import Dataset
from social_xlstm.data.importers.csv_blocks import CsvFiles
from social_xlstm.data.importers.csv_dialect import dialect_of
from social_xlstm.data.importers.csv_tables import (
    ID_COLUMN,
    edge_frame,
    read_edge_list,
    read_sensor_table,
    require_file,
    require_known_ends,
    require_sensor_field,
)
from social_xlstm.data.importers.provenance import table_meta
from social_xlstm.data.importers.timeline import Grid
from social_xlstm.errors import InputError

# What a user's edges CSV may give for each pair.
EDGE_VALUES = ("distance_m", "weight")


def read_user_edges(path: str | Path, sensor_ids: Sequence[str]) -> pd.DataFrame:
    """A user's edges CSV (``from, to`` with ``distance_m`` and/or ``weight``) as canonical edges."""
    path = require_file(path)
    listed = read_edge_list(path, EDGE_VALUES)
    require_known_ends(listed, set(sensor_ids), path)
    return edge_frame(
        listed["from"], listed["to"], **{name: listed[name].to_numpy() for name in EDGE_VALUES if name in listed}
    )


def mark_missing(values: np.ndarray, missing_values: Sequence[float]) -> None:
    """In place: readings equal to a ``--missing-value`` code become NaN (compared as float32,
    as they are stored)."""
    if len(missing_values):
        values[np.isin(values, np.asarray(missing_values, dtype=np.float32))] = np.nan


def user_dataset(
    *,
    format_name: str,
    source: str,
    readings_csv: Path | CsvFiles,
    sensors_csv: str | Path,
    edges_csv: str | Path | None,
    sensor_ids: Sequence[str],
    sensor_column: str = ID_COLUMN,
    sensor_fields: Mapping[str, str] = {},
    features: Sequence[str],
    values: np.ndarray,
    grid: Grid,
    units: Mapping[str, str],
    missing_values: Sequence[float],
    absent: str,
    name: str | None,
    **extra,
) -> Dataset:
    """The checked dataset of a filled ``values [steps, sensors, features]`` grid, with the
    sensors' coordinates, the optional edges and meta.json's account of the import. ``absent``
    names what the file may leave out (time steps, or rows), which is missing too;
    ``sensor_column`` may name the ids in the sensors file, as in the readings, and
    ``sensor_fields`` its other columns (``parse_sensor_fields``)."""
    sensors, unlocated, unused = read_sensor_table(
        sensors_csv, sensor_ids, id_column=sensor_column, fields=sensor_fields
    )
    edges = None if edges_csv is None else read_user_edges(edges_csv, sensor_ids)
    listed = f"; the values {', '.join(f'{v:g}' for v in missing_values)} also mean missing" if missing_values else ""
    readings = readings_csv
    if isinstance(readings_csv, CsvFiles):  # one file is named as wide-csv's is, several as a list
        readings = list(readings_csv.paths) if readings_csv.several else readings_csv.paths[0]
    inputs = {"readings": readings, "sensors": sensors_csv, "edges": edges_csv}
    meta = table_meta(
        format_name=format_name,
        source=source,
        licence="unknown (user-supplied data)",
        step=grid.step,
        units=units,
        missing_value_convention=f"a blank cell is missing{listed}; {absent} are inserted as missing",
        missing_values=missing_values,
        inputs=inputs,
        name=name,
        steps_inserted_as_missing=grid.inserted,
        sensors_without_coordinates=unlocated,
        **({"sensors_listed_without_readings": unused} if unused else {}),
        **csv_layouts(inputs),
        **extra,
    )
    dataset = Dataset(
        values=values, timestamps=grid.stamps, features=list(features), sensors=sensors, edges=edges, meta=meta
    )
    dataset.validate(str(readings_csv))
    return dataset


def parse_sensor_fields(items: Sequence[str]) -> dict[str, str]:
    """``--sensors-field ROLE=COLUMN`` items as given: which column of the sensors file is which field."""
    fields = {}
    for item in items:
        role, sign, column = (part.strip() for part in item.partition("="))
        if not sign or not role or not column:
            raise InputError("--sensors-field", f"{item!r}: expected ROLE=COLUMN, e.g. latitude=Breedtegraad")
        require_sensor_field(role)  # before the readings are read
        if role in fields:
            raise InputError("--sensors-field", f"{role!r} is given twice")
        fields[role] = column
    return fields


def csv_layouts(inputs: Mapping[str, str | Path | list[Path] | None]) -> dict[str, dict[str, str]]:
    """meta.json's ``csv_layout``: how the files of each role that are not comma-separated with
    decimal points were read (``csv_dialect``), so that a separator or decimal mark found in a
    file is on record."""
    said = {}
    for role, paths in inputs.items():
        listed = paths if isinstance(paths, list) else [] if paths is None else [paths]
        layouts = dict.fromkeys(
            dialect.describe() for dialect in map(dialect_of, map(Path, listed)) if not dialect.plain
        )
        if layouts:
            said[role] = " or ".join(layouts)
    return {"csv_layout": said} if said else {}


def clock_note(*notes: str | None) -> dict[str, str]:
    """meta.json's ``clock``: how the times were read (their zone, a DST grid), when it needs saying."""
    said = [note for note in notes if note]
    return {"clock": "; ".join(said)} if said else {}
