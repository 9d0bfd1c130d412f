"""Import a user's own long CSV: one row per time and sensor, one column per feature.

The layout detector systems export (``timestamp, sensor_id, flow, speed, occupancy``). Such a
file holds a row for every reading, so it is read in blocks (``csv_blocks``), twice, and never
whole: the first pass finds the times and the sensors, the second places each block's readings
on the grid. Memory follows the grid (bounded by ``max_values``), not the file. Times must lie on
a regular grid; a time and sensor without a row, and blank cells, become missing readings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.data.dataset import Dataset
from social_xlstm.data.importers.csv_blocks import Block, Coded, FileLines, coded, read_blocks
from social_xlstm.data.importers.csv_tables import (
    ID_COLUMN,
    MAX_COLUMNS,
    as_float32,
    numeric_column,
    read_header,
    require_file,
)
from social_xlstm.data.importers.timeline import (
    MAX_GRID_VALUES,
    Grid,
    check_timezone,
    choose_timezone,
    in_nanoseconds,
    parse_iso_times,
    regular_grid,
    utc_offsets,
)
from social_xlstm.data.importers.user_csv import clock_note, mark_missing, user_dataset
from social_xlstm.errors import InputError

__all__ = ["import_long_csv"]

SOURCE = "long CSV (long-csv): user-supplied readings, one row per time and sensor"


@dataclass(frozen=True)
class Columns:
    """The header's names (an unnamed column, after a trailing comma, gets a placeholder) and
    which hold the time, the sensor id and the features, in file order (``chosen``: the
    features were named by --feature, not every other column)."""

    names: tuple[str, ...]
    time: str
    sensor: str
    features: tuple[str, ...]
    chosen: bool


def _choose_columns(path: Path, time: str, sensor: str, features: Sequence[str] | None) -> Columns:
    header = read_header(path)
    names = tuple(name or f"(unnamed column {i + 1})" for i, name in enumerate(header))
    listed = ", ".join(name for name in header if name)
    if time == sensor:
        raise InputError("--sensor-column", f"{sensor!r} is also the time column")
    for option, name in (("--time-column", time), ("--sensor-column", sensor)):
        if name not in header:
            raise InputError(path, f"no column {name!r} (set {option}); the header has {listed}")
    if features:
        absent = [name for name in features if name not in header]
        if absent:
            raise InputError(path, f"no feature column {absent[0]!r} (--feature); the header has {listed}")
        if {time, sensor} & set(features):
            raise InputError("--feature", f"{time!r} and {sensor!r} are the time and sensor columns, not features")
        chosen = tuple(name for name in header if name in set(features))
    else:
        chosen = tuple(name for name in header if name and name not in (time, sensor))
    if not chosen:
        raise InputError(path, f"no feature column besides {time!r} and {sensor!r}; expected e.g. flow, speed")
    return Columns(names=names, time=time, sensor=sensor, features=chosen, chosen=bool(features))


def _sensor_ids(block: Block, column: str, path: Path) -> Coded:
    """The block's sensor ids, blanks around them removed; a blank id names its line."""
    ids = coded(block, column)
    blank = np.flatnonzero((ids.distinct.str.strip() == "").to_numpy())
    if len(blank):
        row = int(np.flatnonzero(np.isin(ids.rows, blank))[0])
        raise InputError(path, f"column {column!r}, line {block.line(row)}: blank")
    return Coded(rows=ids.rows, distinct=ids.distinct.str.strip())


@dataclass
class Scan:
    """The first pass: each distinct time (sorted, as read: naive or UTC) with the data row it
    first appears on, whether the times carry an offset and which (minutes), and the sensors in
    order of appearance."""

    times: np.ndarray
    rows: np.ndarray
    with_offset: bool
    offsets: set[int]
    sensors: dict[str, int]
    lines: FileLines

    def line(self, index: int) -> int:
        """The file line of distinct time ``index``."""
        return self.lines.of(int(self.rows[index]))


def _block_times(
    block: Block, columns: Columns, path: Path, with_offset: bool | None
) -> tuple[pd.DatetimeIndex, pd.Series]:
    """Each row's time and the block's distinct time texts, each parsed once; a bad one is
    named by its line (the block parsed again row by row, which only an error costs)."""
    where = str(path)
    times = coded(block, columns.time)
    try:
        distinct = in_nanoseconds(parse_iso_times(times.distinct, where), where)
    except InputError:
        parse_iso_times(block.table.column(columns.time).to_pandas(), where, first_line=block.line)
        raise
    if with_offset is not None and (distinct.tz is not None) != with_offset:
        raise InputError(
            path,
            f"line {block.line(0)}: {times.distinct.iloc[times.rows[0]]!r} mixes timestamps with and "
            "without a UTC offset",
        )
    return distinct[times.rows], times.distinct


def _scan(path: Path, columns: Columns, max_values: int) -> Scan:
    """Times and sensors of the whole file, refused as soon as their grid must pass ``max_values``."""
    times, rows = np.empty(0, np.int64), np.empty(0, np.int64)
    with_offset: bool | None = None
    offsets: set[int] = set()
    sensors: dict[str, int] = {}
    lines = FileLines(path)
    for block in read_blocks(path, columns.names, (columns.time, columns.sensor)):
        stamps, texts = _block_times(block, columns, path, with_offset)
        with_offset = stamps.tz is not None
        if with_offset:
            offsets |= utc_offsets(texts)
        for sensor in _sensor_ids(block, columns.sensor, path).distinct:
            sensors.setdefault(sensor, len(sensors))
        if len(sensors) > MAX_COLUMNS:
            raise InputError(path, f"more than {MAX_COLUMNS:,} sensors in column {columns.sensor!r}")
        # earlier rows first, so each distinct time keeps the row it first appears on
        merged, first = np.unique(np.concatenate([times, stamps.asi8]), return_index=True)
        rows = np.concatenate([rows, np.arange(len(stamps)) + block.first_row])[first]
        times = merged
        if len(times) * len(sensors) * len(columns.features) > max_values:
            raise InputError(
                path,
                f"{len(times):,} distinct times x {len(sensors):,} sensors x {len(columns.features)} features "
                f"already pass the limit of {max_values:,} values; check the times (a mistyped year?), or raise "
                "--max-values",
            )
    if with_offset is None:
        raise InputError(path, "no data rows under the header")
    return Scan(times=times, rows=rows, with_offset=with_offset, offsets=offsets, sensors=sensors, lines=lines)


def _localise(scan: Scan, timezone: str, path: Path) -> pd.DatetimeIndex:
    """The distinct times as instants in ``timezone``. Naive times must each name one instant:
    the hour a DST change repeats cannot be told apart in a long file (each sensor's two
    readings at 01:30 look like one reading given twice), and the hour it skips never was."""
    naive = pd.DatetimeIndex(scan.times)
    if scan.with_offset:
        return naive.tz_localize("UTC").tz_convert(timezone)
    stamps = naive.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    if stamps.isna().any():
        index = int(np.flatnonzero(stamps.isna())[0])
        written = f"{naive[index]:%Y-%m-%dT%H:%M}"
        if pd.isna(naive[index : index + 1].tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")[0]):
            offset = (naive[index] - pd.Timedelta(hours=3)).tz_localize(timezone).isoformat()[-6:]  # before the change
            problem = f"happens twice in {timezone} (clocks go back); write the times with a UTC offset, e.g. "
            problem += f"{written}{offset} for the first"
        else:
            problem = f"never happens in {timezone} (clocks skip that hour): the rows are mislabelled"
        raise InputError(path, f"line {scan.line(index)}: {written} {problem}")
    return stamps


def _cells(
    block: Block, columns: Columns, path: Path, scan: Scan, grid: Grid, sensor_index: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's grid step and sensor index; a time or id the scan did not see means the file
    changed between the passes."""
    stamps = _block_times(block, columns, path, scan.with_offset)[0].asi8
    position = np.minimum(np.searchsorted(scan.times, stamps), len(scan.times) - 1)
    ids = _sensor_ids(block, columns.sensor, path)
    sensor = sensor_index.get_indexer(ids.distinct)[ids.rows]
    changed = (scan.times[position] != stamps) | (sensor < 0)
    if changed.any():
        row = int(np.flatnonzero(changed)[0])
        raise InputError(path, f"line {block.line(row)}: the file changed while it was read")
    return grid.rows[position], sensor


def _fill(path: Path, columns: Columns, scan: Scan, grid: Grid, missing_values: Sequence[float]) -> np.ndarray:
    """The second pass: every row's readings at [step, sensor]; a time and sensor given twice is refused."""
    sensors = len(scan.sensors)
    values = np.full((len(grid.stamps), sensors, len(columns.features)), np.nan, dtype=np.float32)
    seen = np.zeros((len(grid.stamps), sensors), dtype=bool)
    sensor_index = pd.Index(list(scan.sensors))
    wanted = (columns.time, columns.sensor, *columns.features)
    hint = "" if columns.chosen else "; --feature NAME (repeatable) reads only the feature columns"
    for block in read_blocks(path, columns.names, wanted, numeric=columns.features, hint=hint):
        step, sensor = _cells(block, columns, path, scan, grid, sensor_index)
        twice = seen[step, sensor]
        cell = step * sensors + sensor
        order = np.argsort(cell, kind="stable")
        twice[order[1:][np.diff(cell[order]) == 0]] = True
        if twice.any():
            row = int(np.flatnonzero(twice)[0])
            first = _first_line_of(path, columns, scan, grid, sensor_index, (step[row], sensor[row]))
            raise InputError(
                path,
                f"line {block.line(row)}: sensor {sensor_index[sensor[row]]!r} at "
                f"{block.table.column(columns.time)[row].as_py()} has a row already, on line {first}; expected one "
                "row per time and sensor",
            )
        seen[step, sensor] = True
        readings = np.stack([as_float32(numeric_column(block.table, name, path)) for name in columns.features], 1)
        mark_missing(readings, missing_values)
        values[step, sensor] = readings
    return values


def _first_line_of(
    path: Path, columns: Columns, scan: Scan, grid: Grid, sensor_index: pd.Index, cell: tuple[int, int]
) -> int:
    """The line of the first row for ``cell`` (step, sensor): read again, since only a repeated
    row asks (keeping a line per cell would double the grid's memory)."""
    for block in read_blocks(path, columns.names, (columns.time, columns.sensor)):
        step, sensor = _cells(block, columns, path, scan, grid, sensor_index)
        match = np.flatnonzero((step == cell[0]) & (sensor == cell[1]))
        if len(match):
            return block.line(int(match[0]))
    raise AssertionError("a repeated row whose first is not in the file")


def parse_units(items: Sequence[str]) -> dict[str, str] | str | None:
    """``--units`` as given: ``FEATURE=UNIT`` items, or one bare unit (for a file of one feature)."""
    if not items:
        return None
    pairs = [item.partition("=") for item in items]
    if len(items) == 1 and not pairs[0][1]:
        return items[0].strip()
    bare = [item for item, (_, sign, _) in zip(items, pairs) if not sign]
    if bare:
        raise InputError("--units", f"{bare[0]!r}: expected FEATURE=UNIT, e.g. flow=veh/5min, when units are repeated")
    units = {feature.strip(): unit.strip() for feature, _, unit in pairs}
    if len(units) < len(items):
        raise InputError("--units", "a feature is given twice")
    return units


def _units_by_feature(units: Mapping[str, str] | str | None, features: Sequence[str]) -> dict[str, str]:
    if isinstance(units, str):
        if len(features) != 1:
            raise InputError(
                "--units", f"{units!r} for {len(features)} features ({', '.join(features)}); give FEATURE=UNIT each"
            )
        units = {features[0]: units}
    unknown = sorted(set(units or {}) - set(features))
    if unknown:
        raise InputError("--units", f"{unknown[0]!r} is not a feature read ({', '.join(features)})")
    return {feature: (units or {}).get(feature, "unknown") for feature in features}


def import_long_csv(
    readings_csv: str | Path,
    sensors_csv: str | Path,
    *,
    time_column: str = "timestamp",
    sensor_column: str = ID_COLUMN,
    features: Sequence[str] | None = None,
    edges_csv: str | Path | None = None,
    missing_values: Sequence[float] = (),
    timezone: str | None = None,
    units: Mapping[str, str] | str | None = None,
    name: str | None = None,
    max_values: int = MAX_GRID_VALUES,
) -> Dataset:
    """Read the rows onto a regular grid of times x sensors x ``features`` (default: every column
    but the time and the sensor id). Timestamps without an offset are local to ``timezone`` (None:
    the times' own offset, else UTC: ``timeline.choose_timezone``);
    ``units`` maps a feature to its unit (a bare unit: the one feature's); sensors absent from
    ``sensors_csv`` get NaN coordinates."""
    readings_csv = require_file(readings_csv)
    if timezone is not None:
        check_timezone(timezone)
    columns = _choose_columns(readings_csv, time_column, sensor_column, features)
    units_by_feature = _units_by_feature(units, columns.features)
    scan = _scan(readings_csv, columns, max_values)
    timezone, zone_note = choose_timezone(timezone, scan.offsets)
    stamps = _localise(scan, timezone, readings_csv)
    grid = regular_grid(
        stamps,
        str(readings_csv),
        first_line=scan.line,
        columns=len(scan.sensors) * len(columns.features),
        max_values=max_values,
        counted="distinct times",
    )
    values = _fill(readings_csv, columns, scan, grid, missing_values)
    return user_dataset(
        format_name="long-csv",
        source=SOURCE,
        readings_csv=readings_csv,
        sensors_csv=sensors_csv,
        edges_csv=edges_csv,
        sensor_ids=list(scan.sensors),
        sensor_column=sensor_column,
        features=columns.features,
        values=values,
        grid=grid,
        units=units_by_feature,
        missing_values=missing_values,
        absent="times and sensors without a row",
        name=name,
        **clock_note(zone_note),
    )
