"""CSV reading shared by the table importers: strict parsing, numeric checks, sensors, edge lists.

Parsing goes through pyarrow's CSV reader because it is fast and strict: a row with too many or
too few fields is an error, never silently padded. Every failure becomes an ``InputError``
naming the file, the column and the line (1-based, header included) a person can open.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from social_xlstm.data.importers.csv_dialect import CsvDialect, dialect_of
from social_xlstm.errors import InputError

ID_COLUMN = "sensor_id"
# columns a CSV may have: pyarrow holds about 11 KB per column however short the file (100,000
# columns of a 1.3 MB file took 1.1 GB); a statewide PeMS table has about 30,000 stations
MAX_COLUMNS = 100_000
COORDINATES = ("latitude", "longitude")
COORDINATE_RANGE = {"latitude": 90.0, "longitude": 180.0}


def require_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    return path


def read_header(path: Path) -> list[str]:
    """The first line's fields (BOM and surrounding blanks removed); refuses empty or duplicate names."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            header = next(csv.reader(stream, delimiter=dialect_of(path).delimiter), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"not a UTF-8 CSV file ({exc})") from None
    if not header or not any(field.strip() for field in header):
        raise InputError(path, "empty file; expected a CSV header line")
    names = [field.strip() for field in header]
    if len(names) > MAX_COLUMNS:
        raise InputError(path, f"{len(names):,} columns; at most {MAX_COLUMNS:,} are read (one per sensor)")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(path, f"column {name!r} appears twice in the header")
        seen.add(name)
    return names


def read_table(path: Path, *, column_names: Sequence[str] | None = None, strings: Sequence[str] = ()) -> pa.Table:
    """Read a whole CSV; ``column_names`` for headerless files, ``strings`` kept as text (ids, times)."""
    dialect = dialect_of(path)
    read_options = pacsv.ReadOptions(column_names=list(column_names) if column_names else None)
    # Text is never missing: an id 'NA' or 'NULL' is an id; a blank one is "" and refused as blank.
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in strings}, strings_can_be_null=False, decimal_point=dialect.decimal
    )
    try:
        table = pacsv.read_csv(
            path,
            read_options=read_options,
            parse_options=pacsv.ParseOptions(delimiter=dialect.delimiter),
            convert_options=convert_options,
        )
    except pa.ArrowInvalid as exc:
        raise InputError(path, f"malformed CSV: {' '.join(str(exc).split())}") from None
    # The header may carry blanks around names ("a, b"); callers look columns up by clean names.
    return table.rename_columns([name.strip() for name in table.column_names])


def numeric_column(table: pa.Table, name: str, path: Path, *, header_lines: int = 1) -> np.ndarray:
    """A column as float64 with NaN for blank cells; a non-number names its line."""
    column = table.column(name)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type):
        return column.to_numpy(zero_copy_only=False).astype(np.float64)
    text = column.to_pandas()
    dialect = dialect_of(path)
    values = dialect.numbers(text)
    row = first_non_number(text, values)
    if row is not None:
        cell = text.iloc[row]
        raise InputError(
            path, f"column {name!r}, line {row + 1 + header_lines}: {cell!r} is not a number{dialect.hint(cell)}"
        )
    return values.to_numpy(dtype=np.float64)


def first_non_number(
    text: pd.Series, values: pd.Series | None = None, dialect: CsvDialect = CsvDialect()
) -> int | None:
    """The first row of ``text`` that holds something other than a number or nothing
    (``values``: its numbers, when already read)."""
    values = dialect.numbers(text) if values is None else values
    bad = values.isna() & text.notna()
    return int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else None


def as_float32(values: np.ndarray) -> np.ndarray:
    """``values`` as a dataset stores readings. A value past float32 (1e300) becomes infinite
    without numpy's warning: the dataset counts infinite readings as missing and says so."""
    with np.errstate(over="ignore"):
        return values.astype(np.float32, copy=False)


def numeric_matrix(table: pa.Table, names: Sequence[str], path: Path) -> np.ndarray:
    """Columns ``names`` stacked as a [rows, len(names)] float32 array, one column at a time."""
    out = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        out[:, j] = as_float32(numeric_column(table, name, path))
    return out


def _is_number(text: str, dialect: CsvDialect) -> bool:
    return bool(dialect.numbers(pd.Series([text])).notna().iloc[0])


# Other spellings of the coordinates' columns, taken when the file lacks the canonical name.
COORDINATE_ALIASES = {"latitude": ("lat",), "longitude": ("lon", "lng", "long")}


ID_ALIASES = ("id",)

# What a column of a sensors file may be read as (--sensors-field ROLE=COLUMN): the ids the
# readings use, the coordinates, and the road, travel direction and position along it that tell
# the graph which neighbour is upstream (graph/geometry.py).
SENSOR_FIELDS = ("sensor_id", "latitude", "longitude", "road", "direction", "position_km")


def require_sensor_field(role: str) -> None:
    if role not in SENSOR_FIELDS:
        raise InputError("--sensors-field", f"{role!r} is not a field; expected one of {', '.join(SENSOR_FIELDS)}")


def _named_fields(header: Sequence[str], fields: Mapping[str, str], path: Path) -> dict[str, str]:
    """Header name -> role for the columns ``fields`` names (role -> column)."""
    renames = {}
    for role, name in fields.items():
        require_sensor_field(role)
        if name not in header:
            raise InputError(
                path, f"no column {name!r} (--sensors-field {role}={name}); the header has {', '.join(header)}"
            )
        if role in header and role != name:
            raise InputError(path, f"has a column {role!r} already; --sensors-field {role}={name} would hide it")
        renames[name] = role
    return renames


def _canonical_names(header: Sequence[str], id_column: str) -> dict[str, str]:
    """Header name -> canonical name, for the id column and coordinates spelled another way or
    in another case (an agency's station list says ``ID, Latitude, Longitude``). Spellings are
    tried most specific first: the name as given (``--sensor-column``), then in any case, then
    the aliases, so a generic ``id`` (a row number?) never wins over the column the user named."""
    spellings = {
        ID_COLUMN: (ID_COLUMN, id_column, *ID_ALIASES),
        **{canonical: (canonical, *aliases) for canonical, aliases in COORDINATE_ALIASES.items()},
    }
    renames = {}
    for canonical, names in spellings.items():
        if canonical in header:
            continue
        for spelling in names:
            exact = [name for name in header if name.strip() == spelling]
            spelled = exact or [name for name in header if name.strip().lower() == spelling.lower()]
            if spelled:
                renames[spelled[0]] = canonical
                break
    return renames


class SensorTable(NamedTuple):
    sensors: pd.DataFrame  # one row per sensor of the readings, in their order
    unlocated: int  # sensors of the readings the file does not list
    unused: int  # sensors the file lists that the readings do not have (left out)


def read_sensor_table(
    path: str | Path, sensor_ids: Sequence[str], *, id_column: str = ID_COLUMN, fields: Mapping[str, str] = {}
) -> SensorTable:
    """Sensors in ``sensor_ids`` order with coordinates matched by id, how many had none, and
    how many the file lists beyond the readings (left out: a network-wide list is welcome).

    Accepts a header with ``sensor_id, latitude, longitude`` (extra columns are kept, a leading
    ``index`` column of the METR-LA file is dropped; ``id_column`` may name the ids, and ``lat``,
    ``lon`` or ``lng`` the coordinates) or the headerless DCRNN layouts
    ``sensor_id, latitude, longitude`` (PEMS-BAY) and ``index, sensor_id, latitude, longitude``.
    Sensors the file does not list get NaN coordinates; a file none of whose ids the data has is
    an error (the wrong column or the wrong file).
    ``fields`` (role -> column, ``SENSOR_FIELDS``) names the columns to read as the ids, the
    coordinates, road, direction and position_km, before any other spelling.
    """
    path = require_file(path)
    header = read_header(path)
    named = _named_fields(header, fields, path)
    renames = {
        name: role
        for name, role in _canonical_names(header, id_column).items()
        if role not in fields and name not in named
    } | named
    if ID_COLUMN in header or ID_COLUMN in renames.values():
        id_name = ID_COLUMN if ID_COLUMN in header else next(k for k, v in renames.items() if v == ID_COLUMN)
        table = read_table(path, strings=[id_name])
        table = table.rename_columns([renames.get(name, name) for name in table.column_names])
        first_data_line = 2
    elif len(header) in (3, 4) and all(_is_number(field, dialect_of(path)) for field in header):
        names = [ID_COLUMN, *COORDINATES] if len(header) == 3 else ["index", ID_COLUMN, *COORDINATES]
        table = read_table(path, column_names=names, strings=[ID_COLUMN])
        first_data_line, id_name = 1, f"{names.index(ID_COLUMN) + 1} of a headerless list"
    else:
        others = [name for name in dict.fromkeys([id_column, *ID_ALIASES]) if name != ID_COLUMN]
        named = f"{ID_COLUMN} (or {' or '.join(others)})"
        raise InputError(
            path, f"expected a header with {named}, latitude, longitude (any case); got {', '.join(header)}"
        )
    for column in COORDINATES:
        if column not in table.column_names:
            also = " or ".join(COORDINATE_ALIASES[column])
            raise InputError(
                path, f"missing column {column!r} (or {also}, any case); expected {ID_COLUMN}, latitude, longitude"
            )
    frame = table.drop_columns(["index"]).to_pandas() if "index" in table.column_names else table.to_pandas()
    frame[ID_COLUMN] = frame[ID_COLUMN].str.strip()
    blank = frame[ID_COLUMN].isna() | (frame[ID_COLUMN] == "")
    if blank.any():
        raise InputError(path, f"blank {ID_COLUMN} on line {int(np.flatnonzero(blank)[0]) + first_data_line}")
    for column in COORDINATES:
        frame[column] = numeric_column(table, column, path, header_lines=first_data_line - 1)
        outside = frame[column].abs() > COORDINATE_RANGE[column]
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise InputError(
                path,
                f"column {column!r}, line {row + first_data_line}: {frame[column].iloc[row]} is outside "
                f"±{COORDINATE_RANGE[column]:g}",
            )
    duplicated = frame[ID_COLUMN].duplicated()
    if duplicated.any():
        raise InputError(path, f"{ID_COLUMN} {frame[ID_COLUMN][duplicated].iloc[0]!r} is listed twice")
    unknown = ~frame[ID_COLUMN].isin(set(sensor_ids))
    if len(frame) and unknown.all():
        raise InputError(
            path,
            f"its ids (column {id_name!r}) name none of the readings' sensors (its first: "
            f"{frame[ID_COLUMN].iloc[0]!r}, the readings' first: {sensor_ids[0]!r}); if another column holds them, "
            "name it: --sensors-field sensor_id=COLUMN",
        )
    listed = frame[~unknown]  # a network-wide list names more sensors than one export has: those are left out
    sensors = listed.set_index(ID_COLUMN).reindex(pd.Index(list(sensor_ids), name=ID_COLUMN)).reset_index()
    return SensorTable(sensors, int(len(sensor_ids) - len(listed)), int(unknown.sum()))


def sensors_without_coordinates(sensor_ids: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({ID_COLUMN: list(sensor_ids), "latitude": np.nan, "longitude": np.nan})


def read_edge_list(path: str | Path, value_names: Sequence[str]) -> pd.DataFrame:
    """An edge list ``from, to`` plus whichever of ``value_names`` the file has, as text ids and floats.

    A headerless three-column file is read as ``from, to, value_names[0]`` (the DCRNN and
    ASTGCN releases all have a header, hand-made files often do not).
    """
    path = require_file(path)
    header = read_header(path)
    if _is_number(header[0], dialect_of(path)):
        if len(header) != 3:
            raise InputError(
                path,
                f"expected a header from, to, {value_names[0]} (or three unnamed columns); got {len(header)} fields",
            )
        table = read_table(path, column_names=["from", "to", value_names[0]], strings=["from", "to"])
        header_lines = 0
    else:
        table = read_table(path, strings=["from", "to"])
        header_lines = 1
    present = [name for name in value_names if name in table.column_names]
    if "from" not in table.column_names or "to" not in table.column_names or not present:
        raise InputError(
            path, f"expected columns from, to and {' or '.join(value_names)}; got {', '.join(table.column_names)}"
        )
    frame = pd.DataFrame({end: table.column(end).to_pandas().str.strip() for end in ("from", "to")})
    blank = (frame.isna() | (frame == "")).any(axis=1)
    if blank.any():
        raise InputError(path, f"blank sensor id on line {int(np.flatnonzero(blank)[0]) + 1 + header_lines}")
    for name in present:
        values = numeric_column(table, name, path, header_lines=header_lines)
        # Weights may be any finite number; everything else here is a distance.
        invalid = ~np.isfinite(values) if name == "weight" else ~(np.isfinite(values) & (values >= 0))
        if invalid.any():
            expected = "a finite number" if name == "weight" else "a distance >= 0"
            raise InputError(
                path, f"column {name!r}, line {int(np.flatnonzero(invalid)[0]) + 1 + header_lines}: expected {expected}"
            )
        frame[name] = values
    if frame.empty:
        raise InputError(path, "no edges listed")
    return frame


def first_unknown_id(ids: pd.Series, known: set[str]) -> str | None:
    unknown = ~ids.isin(known)
    return str(ids[unknown].iloc[0]) if unknown.any() else None


def require_known_ends(edges: pd.DataFrame, known: set[str], path: Path) -> None:
    """Hand-made edge lists must name only sensors of the readings."""
    for end in ("from", "to"):
        unknown = first_unknown_id(edges[end], known)
        if unknown is not None:
            raise InputError(path, f"column {end!r} names sensor {unknown!r}, which is not in the readings")


def edge_frame(src: Sequence, dst: Sequence, **values: Sequence[float]) -> pd.DataFrame:
    """The canonical edges table: self-loops dropped, a pair listed twice keeps its last values."""
    frame = pd.DataFrame({"src": np.asarray(src).astype(str), "dst": np.asarray(dst).astype(str), **values})
    frame = frame[frame["src"] != frame["dst"]]
    return frame.drop_duplicates(["src", "dst"], keep="last").reset_index(drop=True)
