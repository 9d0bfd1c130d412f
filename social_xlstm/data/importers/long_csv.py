"""Import a user's own long CSV: one row per time and sensor, one column per feature.

The layout detector systems export (``timestamp, sensor_id, flow, speed, occupancy``). Such a
file holds a row for every reading, so it is read in blocks (``csv_blocks``), twice, and never
whole: the first pass finds the times and the sensors, the second places each block's readings
on the grid. Memory follows the grid (bounded by ``max_values``), not the file. Times must lie on
a regular grid; a time and sensor without a row, and blank cells, become missing readings.
Naive times in the hour a DST change repeats are told apart by file order, sensor by sensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from social_xlstm.data.dataset import KEY_COLUMNS, Dataset
from social_xlstm.data.importers.csv_blocks import Block, Coded, CsvFiles, FileLines, coded, read_blocks
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
    check_time_format,
    check_timezone,
    choose_timezone,
    in_nanoseconds,
    parse_times,
    regular_grid,
    repeated_time_hint,
    utc_offsets,
)
from social_xlstm.data.importers.user_csv import clock_note, mark_missing, user_dataset
from social_xlstm.errors import InputError

__all__ = ["import_long_csv"]

SOURCE = "long CSV (long-csv): user-supplied readings, one row per time and sensor"


@dataclass(frozen=True)
class Columns:
    """The header's names (an unnamed column, after a trailing comma, gets a placeholder) and
    which hold the time (one column, or a date's and a time of day's), the sensor id and the
    features (in file order, or as --feature names them), with the name each feature gets in the
    dataset (``feature_names``: --feature COLUMN=NAME renames; ``chosen``: the features were
    named by --feature, not every other column), and how the times are written
    (``time_format``: strptime codes, None for ISO 8601)."""

    names: tuple[str, ...]
    time_parts: tuple[str, ...]
    sensor: str
    features: tuple[str, ...]
    chosen: bool
    time_format: str | None = None
    feature_names: tuple[str, ...] = ()

    @property
    def time(self) -> str:
        """The time's column, or its columns joined by ' + ' (a date and a time of day apart)."""
        return " + ".join(self.time_parts)

    def times(self, block: Block) -> pa.ChunkedArray:
        """Each row's time as written: its column, or its columns' cells joined by a blank."""
        parts = [block.table.column(name) for name in self.time_parts]
        return parts[0] if len(parts) == 1 else pa.chunked_array([pc.binary_join_element_wise(*parts, " ")])


def _choose_columns(
    files: CsvFiles, time: Sequence[str], sensor: str, features: Sequence[str] | None, time_format: str | None
) -> Columns:
    path = files.paths[0]
    header = read_header(path)
    for other in files.paths[1:]:
        other_header = read_header(other)
        if other_header != header:
            raise InputError(
                other,
                f"its header ({', '.join(other_header)}) differs from {path.name}'s ({', '.join(header)}); "
                "the files are read as one table",
            )
    names = tuple(name or f"(unnamed column {i + 1})" for i, name in enumerate(header))
    listed = ", ".join(name for name in header if name)
    if sensor in time:
        raise InputError("--sensor-column", f"{sensor!r} is also a time column")
    if len(set(time)) < len(time):
        raise InputError("--time-column", f"a column is given twice: {', '.join(time)}")
    for option, name in (*(("--time-column", part) for part in time), ("--sensor-column", sensor)):
        if name not in header:
            raise InputError(path, f"no column {name!r} (set {option}); the header has {listed}")
    renamed = _feature_renames(features or (), header)
    if features:
        absent = [name for name in renamed if name not in header]
        if absent:
            raise InputError(path, f"no feature column {absent[0]!r} (--feature); the header has {listed}")
        if {*time, sensor} & set(renamed):
            keys = ", ".join(repr(name) for name in (*time, sensor))
            raise InputError("--feature", f"{keys} are the time and sensor columns, not features")
        chosen = tuple(renamed)  # in the order asked for
    else:
        chosen = tuple(name for name in header if name and name not in (*time, sensor))
    if not chosen:
        keys = " and ".join(repr(name) for name in (*time, sensor))
        raise InputError(path, f"no feature column besides {keys}; expected e.g. flow, speed")
    feature_names = tuple(renamed.get(name, name) for name in chosen)
    if len(set(feature_names)) < len(feature_names):
        raise InputError("--feature", f"two columns would be named alike: {', '.join(feature_names)}")
    return Columns(
        names=names,
        time_parts=tuple(time),
        sensor=sensor,
        features=chosen,
        chosen=bool(features),
        time_format=time_format,
        feature_names=feature_names,
    )


def _feature_renames(items: Sequence[str], header: Sequence[str]) -> dict[str, str]:
    """--feature items as column -> dataset name: ``COLUMN`` keeps its name, ``COLUMN=NAME``
    renames it (an item that is a column's whole name is that column, even with an ``=`` in it)."""
    renamed = {}
    for item in items:
        column, sign, name = (part.strip() for part in item.rpartition("="))
        if item in header or not sign:
            column, name = item, item
        if not column or not name:
            raise InputError("--feature", f"{item!r}: expected COLUMN or COLUMN=NAME, e.g. 'Snelheid (km/u)=speed'")
        if name in KEY_COLUMNS and name != column:
            raise InputError("--feature", f"{item!r}: {name!r} names the dataset's own {name} column")
        if column in renamed:
            raise InputError("--feature", f"column {column!r} is given twice")
        renamed[column] = name
    return renamed


def _sensor_ids(block: Block, column: str) -> Coded:
    """The block's sensor ids, blanks around them removed; a blank id names its line."""
    ids = coded(block.table.column(column))
    blank = np.flatnonzero((ids.distinct.str.strip() == "").to_numpy())
    if len(blank):
        row = int(np.flatnonzero(np.isin(ids.rows, blank))[0])
        raise InputError(block.path, f"column {column!r}, line {block.line(row)}: blank")
    return Coded(rows=ids.rows, distinct=ids.distinct.str.strip())


@dataclass
class Scan:
    """The first pass: each distinct time (sorted, as read: naive or UTC) with the data row it
    first appears on (counted over the files, one after the other, each file starting at
    ``starts``), whether the times carry an offset and which (minutes), and the sensors in order
    of appearance."""

    times: np.ndarray
    rows: np.ndarray
    with_offset: bool
    offsets: set[int]
    sensors: dict[str, int]
    files: CsvFiles
    starts: np.ndarray

    def location(self, index: int) -> tuple[Path, int]:
        """The file and line of distinct time ``index``."""
        row = int(self.rows[index])
        file = int(np.searchsorted(self.starts, row, side="right")) - 1
        path = self.files.paths[file]
        return path, FileLines(path).of(row - int(self.starts[file]))

    def place(self, index: int) -> int | str:
        """Its line, with its file's name when there are several (``timeline.row_name``)."""
        path, line = self.location(index)
        return f"{path.name} line {line}" if self.files.several else line


def _block_times(block: Block, columns: Columns, with_offset: bool | None) -> tuple[pd.DatetimeIndex, pd.Series]:
    """Each row's time and the block's distinct time texts, each parsed once; a bad one is
    named by its line (the block parsed again row by row, which only an error costs)."""
    where = str(block.path)
    times = coded(columns.times(block))
    try:
        distinct = in_nanoseconds(parse_times(times.distinct, where, time_format=columns.time_format), where)
    except InputError:
        every_row = columns.times(block).to_pandas()
        parse_times(every_row, where, first_line=block.line, time_format=columns.time_format)
        raise
    if with_offset is not None and (distinct.tz is not None) != with_offset:
        raise InputError(
            block.path,
            f"line {block.line(0)}: {times.distinct.iloc[times.rows[0]]!r} mixes timestamps with and "
            "without a UTC offset",
        )
    return distinct[times.rows], times.distinct


def _scan(files: CsvFiles, columns: Columns, max_values: int) -> Scan:
    """Times and sensors of all the files, refused as soon as their grid must pass ``max_values``."""
    times, rows = np.empty(0, np.int64), np.empty(0, np.int64)
    with_offset: bool | None = None
    offsets: set[int] = set()
    sensors: dict[str, int] = {}
    starts = np.zeros(len(files.paths), np.int64)  # each file's first row, counted over the files before it
    for index, path in enumerate(files.paths):
        file_rows = 0
        for block in read_blocks(path, columns.names, (*columns.time_parts, columns.sensor)):
            stamps, texts = _block_times(block, columns, with_offset)
            with_offset = stamps.tz is not None
            if with_offset:
                offsets |= utc_offsets(texts, columns.time_format)
            for sensor in _sensor_ids(block, columns.sensor).distinct:
                sensors.setdefault(sensor, len(sensors))
            if len(sensors) > MAX_COLUMNS:
                raise InputError(path, f"more than {MAX_COLUMNS:,} sensors in column {columns.sensor!r}")
            # earlier rows first, so each distinct time keeps the row it first appears on
            merged, first = np.unique(np.concatenate([times, stamps.asi8]), return_index=True)
            rows = np.concatenate([rows, np.arange(len(stamps)) + starts[index] + block.first_row])[first]
            times = merged
            file_rows = block.first_row + len(stamps)
            if len(times) * len(sensors) * len(columns.features) > max_values:
                raise InputError(
                    path,
                    f"{len(times):,} distinct times x {len(sensors):,} sensors x {len(columns.features)} features "
                    f"already pass the limit of {max_values:,} values; check the times (a mistyped year?), or raise "
                    "--max-values",
                )
        if index + 1 < len(starts):
            starts[index + 1] = starts[index] + file_rows
    if with_offset is None:
        raise InputError(files, "no data rows under the header")
    return Scan(
        times=times, rows=rows, with_offset=with_offset, offsets=offsets, sensors=sensors, files=files, starts=starts
    )


@dataclass(frozen=True)
class Instants:
    """The distinct times as instants: ``stamps[i]`` is distinct time i (in daylight time where
    a wall-clock time happens twice), and after them come the standard-time instants of those
    times, ``repeated[k]`` naming the distinct time of the k-th (sorted). ``window`` numbers, for
    each distinct time within an hour of a repeated one, the day clocks went back (-1 elsewhere):
    there each sensor's rows must come in time order, which is what tells the two hours apart;
    the days are checked apart (yearly files may be joined in any order)."""

    stamps: pd.DatetimeIndex
    repeated: np.ndarray
    window: np.ndarray

    @property
    def windows(self) -> int:
        return int(self.window.max()) + 1 if len(self.window) else 0

    @property
    def distinct(self) -> int:
        """How many distinct times: the standard-time instants come after them."""
        return len(self.stamps) - len(self.repeated)

    def time_of(self, index: int) -> int:
        """The distinct time of instant ``index``."""
        return index if index < self.distinct else int(self.repeated[index - self.distinct])


def _localise(scan: Scan, timezone: str) -> Instants:
    """The distinct times as instants in ``timezone``. A naive time the clocks pass twice (the
    hour a DST change repeats) gets both instants: which one a row means is its sensor's first
    or second row at that time (``_Cells``). The hour a DST change skips never was."""
    naive = pd.DatetimeIndex(scan.times)
    if scan.with_offset:
        return Instants(naive.tz_localize("UTC").tz_convert(timezone), np.empty(0, np.int64), np.full(len(naive), -1))
    daylight = naive.tz_localize(timezone, ambiguous=np.ones(len(naive), bool), nonexistent="NaT")
    skipped = np.flatnonzero(daylight.isna())
    if len(skipped):
        index = int(skipped[0])
        path, line = scan.location(index)
        raise InputError(
            path,
            f"line {line}: {naive[index]:%Y-%m-%dT%H:%M} never happens in {timezone} (clocks skip "
            "that hour): the rows are mislabelled, or the times are not that zone's clock (check --timezone)",
        )
    standard = naive.tz_localize(timezone, ambiguous=np.zeros(len(naive), bool))
    repeated = np.flatnonzero(daylight.asi8 != standard.asi8)
    window = np.full(len(naive), -1)
    if len(repeated):
        twice = scan.times[repeated]
        day = np.unique(twice // pd.Timedelta(days=1).value, return_inverse=True)[1]
        later = np.minimum(np.searchsorted(twice, scan.times), len(twice) - 1)
        earlier = np.maximum(later - 1, 0)
        nearest = np.where(np.abs(scan.times - twice[earlier]) < np.abs(scan.times - twice[later]), earlier, later)
        near = np.abs(scan.times - twice[nearest]) <= pd.Timedelta(hours=1).value
        window[near] = day[nearest[near]]
    return Instants(daylight.append(standard[repeated]), repeated, window)


class _Cells:
    """One pass's map from each row, blocks in file order, to its (grid step, sensor). A sensor's
    first row at a time the clocks pass twice is the daylight one, its next the standard one:
    detectors report in time order, so file order is time order sensor by sensor; within an hour
    of such a time, rows out of that order are refused (a file sorted newest first, or shuffled).
    A third row lands on the second's cell, where ``_fill`` refuses it as given twice."""

    def __init__(self, columns: Columns, scan: Scan, grid: Grid, instants: Instants):
        self.columns, self.scan, self.grid, self.instants = columns, scan, grid, instants
        self.sensor_index = pd.Index(list(scan.sensors))
        self.rows_seen = np.zeros(len(instants.repeated) * len(scan.sensors), np.int64)  # per (repeated time, sensor)
        # each (window, sensor)'s latest instant so far
        self.last_near = np.full(instants.windows * len(scan.sensors), np.iinfo(np.int64).min)
        self.standard_rows = 0

    def __call__(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        """The block's rows' grid steps and sensor indices; a time or id the scan did not see
        means the file changed between the passes."""
        times = self.scan.times
        stamps = _block_times(block, self.columns, self.scan.with_offset)[0].asi8
        position = np.minimum(np.searchsorted(times, stamps), len(times) - 1)
        ids = _sensor_ids(block, self.columns.sensor)
        sensor = self.sensor_index.get_indexer(ids.distinct)[ids.rows]
        changed = (times[position] != stamps) | (sensor < 0)
        if changed.any():
            row = int(np.flatnonzero(changed)[0])
            raise InputError(block.path, f"line {block.line(row)}: the file changed while it was read")
        step = self.grid.rows[position]
        if len(self.instants.repeated):
            extra = self._second_rows_to_standard_time(step, position, sensor)
            self._require_time_order(block, step, position, sensor, extra)
        return step, sensor

    def _require_time_order(
        self, block: Block, step: np.ndarray, position: np.ndarray, sensor: np.ndarray, extra: np.ndarray
    ) -> None:
        """Each sensor's instants near a repeated hour rise in file order, day by day (``extra``
        rows, a third at a repeated time, are left to ``_fill``, which names them as given twice)."""
        window = self.instants.window[position]
        rows = np.flatnonzero((window >= 0) & ~extra)
        if not len(rows):
            return
        key = window[rows] * len(self.sensor_index) + sensor[rows]
        order = np.argsort(key, kind="stable")
        who, when = key[order], self.grid.stamps.asi8[step[rows][order]]
        first = np.r_[True, who[1:] != who[:-1]]
        before = np.where(first, self.last_near[who], np.r_[when[:1], when[:-1]])
        late = np.flatnonzero(when < before)
        if len(late):
            row = int(rows[order[late]].min())  # the first in the file
            raise InputError(
                block.path,
                f"line {block.line(row)}: the rows of sensor {self.sensor_index[sensor[row]]!r} are not in time "
                "order near the hour a DST change repeats (or one is given twice), and only their order tells the "
                "two hours apart; write those times with their UTC offset, or keep each sensor's rows oldest first",
            )
        last = np.r_[who[1:] != who[:-1], True]
        self.last_near[who[last]] = when[last]

    def clock_note(self, timezone: str) -> str | None:
        """How the repeated hour was read (meta.json's ``clock``), after the pass, when the file has one."""
        repeated = self.instants.repeated
        if not len(repeated):
            return None
        first = self.instants.stamps[int(repeated[0])]
        days = len(set(self.instants.stamps[repeated].date))
        when = f"{first:%Y-%m-%d %H:%M}" + (f" and on {days - 1} more day(s)" if days > 1 else "")
        said = (
            f"naive times that happen twice in {timezone} when clocks go back ({when}): each sensor's first row at "
            "such a time was read as daylight time, its second as standard time"
        )
        if not self.standard_rows:
            return said + "; no sensor has a second row, so the standard-time hour is missing"
        rows = self.rows_seen.reshape(len(repeated), -1)
        alone = int(((rows == 1) & (rows.max(axis=1, keepdims=True) >= 2)).any(axis=0).sum())
        if alone:
            said += (
                f"; {alone} sensor(s) have one row at such a time where others have two, read as daylight time (if "
                "it was the second, write those times with their UTC offset)"
            )
        return said

    def _second_rows_to_standard_time(self, step: np.ndarray, position: np.ndarray, sensor: np.ndarray) -> np.ndarray:
        """Moves each sensor's second row at a repeated time to its standard-time step, in place;
        returns which rows are a third or later (given twice, for ``_fill`` to refuse)."""
        repeated = self.instants.repeated
        extra = np.zeros(len(step), bool)
        k = np.minimum(np.searchsorted(repeated, position), len(repeated) - 1)
        rows = np.flatnonzero(repeated[k] == position)
        if not len(rows):
            return extra
        pair = k[rows] * len(self.sensor_index) + sensor[rows]
        order = np.argsort(pair, kind="stable")  # file order within each (time, sensor)
        starts = np.r_[True, pair[order][1:] != pair[order][:-1]]
        rank = np.empty(len(rows), np.int64)
        rank[order] = np.arange(len(rows)) - np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))
        occurrence = self.rows_seen[pair] + rank
        np.add.at(self.rows_seen, pair, 1)
        later = occurrence > 0
        step[rows[later]] = self.grid.rows[self.instants.distinct + k[rows[later]]]
        self.standard_rows += int((occurrence == 1).sum())
        extra[rows[occurrence > 1]] = True
        return extra


def _fill(
    files: CsvFiles,
    columns: Columns,
    scan: Scan,
    grid: Grid,
    instants: Instants,
    missing_values: Sequence[float],
    if_repeated: str = "",
) -> tuple[np.ndarray, _Cells, int]:
    """The second pass: every row's readings at [step, sensor]. A row that repeats an earlier
    one of its time and sensor with the same readings is dropped (exports of a file per day often
    overlap by a step) and counted; one with other readings is refused (``if_repeated`` ends that
    message). Also returns the pass's cells (how many rows went to a standard-time hour)."""
    sensors = len(scan.sensors)
    values = np.full((len(grid.stamps), sensors, len(columns.features)), np.nan, dtype=np.float32)
    seen = np.zeros((len(grid.stamps), sensors), dtype=bool)
    cells = _Cells(columns, scan, grid, instants)
    wanted = (*columns.time_parts, columns.sensor, *columns.features)
    hint = "" if columns.chosen else "; --feature NAME (repeatable) reads only the feature columns"
    dropped = 0
    for block in files.blocks(columns.names, wanted, numeric=columns.features, hint=hint):
        step, sensor = cells(block)
        readings = np.stack([as_float32(numeric_column(block.table, name, block.path)) for name in columns.features], 1)
        mark_missing(readings, missing_values)
        repeated, conflicting = _repeated_rows(
            step * sensors + sensor, readings, seen[step, sensor], values[step, sensor]
        )
        if conflicting.any():
            row = int(np.flatnonzero(conflicting)[0])
            path, line = _first_line_of(_Cells(columns, scan, grid, instants), (step[row], sensor[row]))
            where = "" if path == block.path else f" of {path.name}"
            raise InputError(
                block.path,
                f"line {block.line(row)}: sensor {cells.sensor_index[sensor[row]]!r} at "
                f"{columns.times(block)[row].as_py()} has a row with other readings already, on line "
                f"{line}{where}; expected one row per time and sensor{if_repeated}",
            )
        kept = ~repeated
        dropped += int(repeated.sum())
        seen[step[kept], sensor[kept]] = True
        values[step[kept], sensor[kept]] = readings[kept]
    return values, cells, dropped


def _repeated_rows(
    cell: np.ndarray, readings: np.ndarray, filled: np.ndarray, stored: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which of a block's rows repeat a cell (a step and sensor) that an earlier block ``filled``
    (with ``stored`` readings) or an earlier row of the block holds, and which of those repeats
    carry other readings than the one they repeat (a blank repeats only a blank)."""
    order = np.argsort(cell, kind="stable")
    starts = np.r_[True, cell[order][1:] != cell[order][:-1]]
    first = np.empty_like(order)  # each row's first row of its cell within the block
    first[order] = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    repeated = filled | (first != np.arange(len(cell)))
    before = np.where(filled[:, None], stored, readings[first])
    same = ((before == readings) | (np.isnan(before) & np.isnan(readings))).all(axis=1)
    return repeated, repeated & ~same


def _first_line_of(cells: _Cells, cell: tuple[int, int]) -> tuple[Path, int]:
    """The file and line of the first row for ``cell`` (step, sensor): read again (with fresh
    ``cells``), since only a repeated row asks (keeping a line per cell would double the grid's memory)."""
    for block in cells.scan.files.blocks(cells.columns.names, (*cells.columns.time_parts, cells.columns.sensor)):
        step, sensor = cells(block)
        match = np.flatnonzero((step == cell[0]) & (sensor == cell[1]))
        if len(match):
            return block.path, block.line(int(match[0]))
    raise AssertionError("a repeated row whose first is not in the files")


def _dates_only_hint(scan: Scan, columns: Columns) -> str:
    """What to add to a grid's error when every time is a midnight: the time of day may be in
    a column of its own (a report's date and its interval's end apart)."""
    if len(scan.times) < 2 or scan.with_offset or (scan.times % pd.Timedelta(days=1).value).any():
        return ""
    return (
        f"; every time in {columns.time!r} is a midnight: if the time of day is in another column, give "
        "--time-column twice (the date's column, then the time's)"
    )


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
    readings_csv: str | Path | Sequence[str | Path],
    sensors_csv: str | Path,
    *,
    time_column: str | Sequence[str] = "timestamp",
    sensor_column: str = ID_COLUMN,
    features: Sequence[str] | None = None,
    time_format: str | None = None,
    edges_csv: str | Path | None = None,
    missing_values: Sequence[float] = (),
    sensor_fields: Mapping[str, str] = {},
    timezone: str | None = None,
    units: Mapping[str, str] | str | None = None,
    name: str | None = None,
    max_values: int = MAX_GRID_VALUES,
) -> Dataset:
    """Read the rows onto a regular grid of times x sensors x ``features`` (default: every column
    but the time and the sensor id). Times are ISO 8601, or written as ``time_format`` says
    (strptime codes, e.g. ``%m/%d/%Y %H:%M``); those without an offset are local to ``timezone`` (None:
    the times' own offset, else UTC: ``timeline.choose_timezone``);
    ``units`` maps a feature to its unit (a bare unit: the one feature's); sensors absent from
    ``sensors_csv`` get NaN coordinates. Several readings files (a file per day or per detector,
    each with the same header) are read as one table, in the order given."""
    paths = [readings_csv] if isinstance(readings_csv, (str, Path)) else list(readings_csv)
    files = CsvFiles(tuple(require_file(path) for path in paths))
    if timezone is not None:
        check_timezone(timezone)
    if time_format is not None:
        check_time_format(time_format)
    time_parts = [time_column] if isinstance(time_column, str) else list(time_column)
    columns = _choose_columns(files, time_parts, sensor_column, features, time_format)
    units_by_feature = _units_by_feature(units, columns.feature_names)
    scan = _scan(files, columns, max_values)
    dates_only = _dates_only_hint(scan, columns)
    repeated_hint = repeated_time_hint(timezone, scan.offsets) + dates_only
    timezone, zone_note = choose_timezone(timezone, scan.offsets)
    instants = _localise(scan, timezone)
    try:
        grid = regular_grid(
            instants.stamps,
            str(files),
            first_line=lambda index: scan.place(instants.time_of(index)),
            columns=len(scan.sensors) * len(columns.features),
            max_values=max_values,
            counted="distinct times",
        )
    except InputError as exc:
        raise InputError(exc.where, exc.problem + dates_only) from None
    values, cells, dropped = _fill(files, columns, scan, grid, instants, missing_values, repeated_hint)
    return user_dataset(
        format_name="long-csv",
        source=SOURCE,
        readings_csv=files,
        sensors_csv=sensors_csv,
        edges_csv=edges_csv,
        sensor_ids=list(scan.sensors),
        sensor_column=sensor_column,
        features=columns.feature_names,
        values=values,
        grid=grid,
        units=units_by_feature,
        missing_values=missing_values,
        sensor_fields=sensor_fields,
        absent="times and sensors without a row",
        name=name,
        **clock_note(zone_note, cells.clock_note(timezone)),
        **({"repeated_rows_dropped": dropped} if dropped else {}),
    )
