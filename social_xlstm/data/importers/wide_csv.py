"""Import a user's own wide CSV: a timestamp column, then one column per sensor id.

Coordinates come from a sensors CSV (``sensor_id, latitude, longitude`` and any other columns,
which are kept), the road graph optionally from an edges CSV (``from, to`` with ``distance_m``
and/or ``weight``). Times must lie on a regular grid: absent rows become missing steps, a time
off the grid is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from social_xlstm.data.dataset import Dataset
from social_xlstm.data.importers.csv_tables import (
    numeric_matrix,
    read_header,
    read_table,
    require_file,
)
from social_xlstm.data.importers.timeline import (
    MAX_GRID_VALUES,
    check_time_format,
    choose_timezone,
    parse_row_times,
    place_on_grid,
    regular_grid,
    repeated_time_hint,
    utc_offsets,
)
from social_xlstm.data.importers.user_csv import clock_note, mark_missing, user_dataset
from social_xlstm.errors import InputError

__all__ = ["import_wide_csv"]

SOURCE = "wide CSV (wide-csv): user-supplied readings, one column per sensor"


def import_wide_csv(
    readings_csv: str | Path,
    sensors_csv: str | Path,
    *,
    edges_csv: str | Path | None = None,
    missing_values: Sequence[float] = (),
    sensor_fields: Mapping[str, str] = {},
    feature: str = "speed",
    timezone: str | None = None,
    time_format: str | None = None,
    units: str | None = None,
    name: str | None = None,
    max_values: int = MAX_GRID_VALUES,
) -> Dataset:
    """Read the readings onto a regular grid; blank cells and ``missing_values`` become NaN.

    Times are ISO 8601, or written as ``time_format`` says (strptime codes, e.g.
    ``%m/%d/%Y %H:%M``); those without an offset are local to ``timezone`` (None: the times' own offset, else
    UTC: ``timeline.choose_timezone``); sensors absent from
    ``sensors_csv`` get NaN coordinates, sensors it lists that the readings lack are left out.
    """
    readings_csv = require_file(readings_csv)
    if time_format is not None:
        check_time_format(time_format)
    header = read_header(readings_csv)
    time_column, sensor_ids = header[0], header[1:]
    if not sensor_ids:
        raise InputError(readings_csv, "expected a timestamp column, then one column per sensor id")
    table = read_table(readings_csv, strings=[time_column])
    if table.num_rows == 0:
        raise InputError(readings_csv, "no data rows under the header")
    text = table.column(time_column).to_pandas()
    offsets = utc_offsets(text.drop_duplicates(), time_format)
    repeated_hint = repeated_time_hint(timezone, offsets)
    timezone, zone_note = choose_timezone(timezone, offsets)
    times = parse_row_times(text, timezone, str(readings_csv), time_format=time_format)
    grid = regular_grid(
        times.stamps,
        str(readings_csv),
        columns=len(sensor_ids),
        max_values=max_values,
        if_repeated=f"; a file of one row per time and sensor is a long table: data import long-csv{repeated_hint}",
    )
    values = numeric_matrix(table, sensor_ids, readings_csv)
    del table
    mark_missing(values, missing_values)
    values = place_on_grid(values, grid)[:, :, None]
    return user_dataset(
        format_name="wide-csv",
        source=SOURCE,
        readings_csv=readings_csv,
        sensors_csv=sensors_csv,
        edges_csv=edges_csv,
        sensor_ids=sensor_ids,
        features=[feature],
        values=values,
        grid=grid,
        units={feature: units or "unknown"},
        missing_values=missing_values,
        sensor_fields=sensor_fields,
        absent="time steps absent from the file",
        name=name,
        **clock_note(zone_note, times.note),
    )
