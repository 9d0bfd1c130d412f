"""Time axes for the table importers: options, localisation and the regular grid.

Every dataset lives on a regular grid of absolute instants. Sources give either a start and a
step (T-GCN, PEMS npz), or one timestamp per row (wide CSV, METR HDF5); rows missing from the
grid become explicit missing steps, but steps that are not a multiple of the usual step mean
the file is not a regular series and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from social_xlstm.errors import InputError


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(
            "--timezone", f"{timezone!r} is not an IANA time zone; expected e.g. UTC or America/Los_Angeles"
        ) from None
    return timezone


def check_time_format(time_format: str) -> str:
    """A ``--time-format`` strptime can use, refused before any reading: an empty one, a bad
    directive (which strptime would report as every time failing to match), or %Z (strptime
    reads only UTC or GMT there and gives naive times, which --timezone would then shift)."""
    if not time_format.strip():
        raise InputError("--time-format", "empty; expected strptime codes, e.g. '%m/%d/%Y %H:%M'")
    codes = re.findall(r"%.", time_format.replace("%%", ""))
    if "%Z" in codes:
        raise InputError(
            "--time-format", f"{time_format!r}: %Z (a zone name) is not read as a zone; write the UTC offset with %z"
        )
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise InputError("--time-format", f"{time_format!r}: {twice[0]} is given twice")
    try:
        datetime.strptime("", time_format)
    except ValueError as exc:
        if "does not match format" not in str(exc):
            raise InputError("--time-format", f"{time_format!r}: {exc}") from None
    return time_format


def interval_text(step: pd.Timedelta) -> str:
    """Pandas' short spelling (5min, 30s, 1h) that ``pd.Timedelta`` reads back."""
    text = pd.tseries.frequencies.to_offset(step).freqstr
    return text if text[0].isdigit() else f"1{text}"


def parse_interval(interval: str) -> pd.Timedelta:
    try:
        step = pd.Timedelta(interval)
    except ValueError:
        raise InputError("--interval", f"{interval!r} is not a duration; expected e.g. 5min, 15min, 1h") from None
    if step <= pd.Timedelta(0) or step % pd.Timedelta("1s"):
        raise InputError("--interval", f"{interval!r} must be a positive whole number of seconds, e.g. 5min")
    return step


def parse_start(start: str, timezone: str) -> pd.Timestamp:
    """``--start`` in ``timezone``: an offset in the text wins, a naive time is local to ``timezone``."""
    try:
        stamp = pd.Timestamp(start)
    except ValueError:
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise InputError("--start", f"{start!r} is not a timestamp; expected e.g. 2012-03-01T00:00")
    naive = stamp.tz_convert(None) if stamp.tz is not None else stamp
    if not pd.Timestamp.min + pd.Timedelta(days=1) < naive < pd.Timestamp.max - pd.Timedelta(days=1):
        first, last = pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1
        raise InputError("--start", f"{start!r} is outside the years {first} to {last} that a timestamp holds")
    if stamp.tz is not None:
        return stamp.tz_convert(timezone)
    try:
        return stamp.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
    except (ValueError, OverflowError):
        raise InputError(
            "--start",
            f"{start!r} does not exist or is ambiguous in {timezone} (a DST change); add an offset, e.g. {start}-08:00",
        ) from None


def grid_from_start(start: str, interval: str, periods: int, timezone: str) -> pd.DatetimeIndex:
    """``periods`` instants ``interval`` apart from ``start`` (absolute steps, also across DST)."""
    first, step = parse_start(start, check_timezone(timezone)), parse_interval(interval)
    try:
        return pd.date_range(first, periods=periods, freq=step).as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InputError(
            "--start",
            f"{periods:,} steps of {interval} from {start} end past {pd.Timestamp.max.year}, the last year "
            "a timestamp holds; check --start and --interval",
        ) from None


@dataclass
class Localised:
    stamps: pd.DatetimeIndex
    note: str | None


def _standard_offset(zone: str, moment: datetime) -> pd.Timedelta:
    local = moment.replace(tzinfo=ZoneInfo(zone))
    return pd.Timedelta(local.utcoffset() - local.dst())


def localise(naive: pd.DatetimeIndex, timezone: str, where: str) -> Localised:
    """Attach ``timezone`` to naive wall-clock times, rows in file order.

    Repeated hours at the end of DST are resolved by order (``ambiguous="infer"``). A series that
    runs as an unbroken regular grid straight through a DST change cannot be wall-clock time (the
    DCRNN METR-LA file is such a grid): it was kept on the zone's standard time, and is read so.
    """
    try:
        return Localised(naive.tz_localize(timezone, ambiguous="infer", nonexistent="raise"), None)
    except (ValueError, OverflowError) as exc:
        steps = np.diff(naive.asi8)
        if len(steps) and (steps == steps[0]).all() and steps[0] > 0:
            offset = _standard_offset(timezone, naive[0].to_pydatetime())
            stamps = (naive - offset).tz_localize("UTC").tz_convert(timezone)
            return Localised(
                stamps,
                f"the naive timestamps form a regular grid through a DST change, so they were read as {timezone} "
                f"standard time (UTC{_offset_text(offset)})",
            )
        raise InputError(
            where,
            f"naive timestamps are not valid wall-clock times in {timezone} ({exc}); write them with a UTC offset",
        ) from None


# A UTC offset (or Z) after a time of day; a bare date such as 2024-01-01 must not look like one.
# Where row i of a table is: the file line of row 0 (an int), each row's line (an array, or a
# function of the row, which a reader of a long file computes only for the row it names), or
# None for 0-based rows of a source that has no lines. A function may also name the row's place
# whole ("day-02.csv line 12": a table read from several files).
Lines = int | np.ndarray | Callable[[int], int | str] | None


def row_name(row: int, first_line: Lines) -> str:
    if first_line is None:
        return f"row {row}"
    if isinstance(first_line, np.ndarray):
        return f"line {first_line[row]}"
    line = first_line(row) if callable(first_line) else row + first_line
    return line if isinstance(line, str) else f"line {line}"


_OFFSET_AT_END = r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$"
_HAS_OFFSET = _OFFSET_AT_END.replace("(Z|", "(?:Z|")  # the same, without a group: for str.contains


# Layouts agencies and spreadsheets export besides ISO 8601, which a refused time is tried against.
COMMON_LAYOUTS = tuple(
    f"{date} {clock}"
    for date in ("%m/%d/%Y", "%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y", "%m-%d-%Y", "%d-%m-%Y")
    for clock in ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p")
)


MAX_HINT_TEXTS = 2000  # times a layout hint checks: enough for a day past the 12th, few enough to be quick


def _reads(written: str, layout: str) -> bool:
    try:
        datetime.strptime(written.strip(), layout)
    except ValueError:
        return False
    return True


def _layouts_reading(written: str) -> list[str]:
    """The common layouts that read ``written``, month first first."""
    return [layout for layout in COMMON_LAYOUTS if _reads(written, layout)]


def _layouts_phrase(fits: list[str]) -> str:
    said = [f"--time-format '{layout}'" for layout in fits]
    return f"{said[0]} reads it" + (f" (or {said[1]}, if the day comes first)" if len(said) > 1 else "")


def time_format_hint(written: str, others: Sequence[str] = ()) -> str:
    """What a time that is not ISO 8601 suggests: the common layouts that read it (a date such
    as 03/04/2024 reads month first and day first: both are named, month first first), less
    those that cannot read ``others`` (more of the file's times: a 13/10/2024 settles it)."""
    fits = _layouts_reading(written)
    for other in others:
        if len(fits) < 2:
            break
        fits = [layout for layout in fits if _reads(other, layout)] or fits
    if not fits:
        return "--time-format reads another layout in strptime codes, e.g. '%m/%d/%Y %H:%M' for 03/07/2012 17:50"
    return _layouts_phrase(fits)


def _strptime(text: pd.Series, time_format: str, where: str, first_line: Lines) -> list[datetime]:
    """Each row's time read with ``time_format`` (strptime codes), each distinct text once."""
    codes, distinct = pd.factorize(text)
    parsed = []
    for index, written in enumerate(distinct):
        try:
            parsed.append(datetime.strptime(written, time_format))
        except ValueError as exc:
            row = int(np.flatnonzero(codes == index)[0])
            left = str(exc).partition("unconverted data remains: ")[2]
            others = [layout for layout in _layouts_reading(written) if layout != time_format]
            raise InputError(
                where,
                f"{row_name(row, first_line)}: {written!r} does not match --time-format {time_format!r}"
                + (f" ({left!r} is left over)" if left else "")
                + (f"; {_layouts_phrase(others)}" if others else ""),
            ) from None
    return [parsed[code] for code in codes]


def utc_offsets(text: pd.Series, time_format: str | None = None) -> set[int]:
    """The UTC offsets, in minutes, the times carry: written at the end of ISO times, or read
    with ``time_format``'s %z (naive times give none; times that do not all parse give none: the
    parse that follows names the line)."""
    if time_format is not None:
        try:
            stamps = _strptime(text.dropna().str.strip().drop_duplicates(), time_format, "times", None)
        except InputError:  # the parse that follows names the line
            return set()
        return {int(stamp.utcoffset().total_seconds() // 60) for stamp in stamps if stamp.tzinfo is not None}
    offsets = set()
    for written in text.str.strip().str.extract(_OFFSET_AT_END)[0].dropna().unique():
        digits = written.replace(":", "")
        minutes = 0 if digits == "Z" else int(digits[1:3]) * 60 + int(digits[3:5] or 0)
        offsets.add(-minutes if digits.startswith("-") else minutes)
    return offsets


def repeated_time_hint(given: str | None, offsets: set[int]) -> str:
    """What ends the message of a time given twice when naive times were read as UTC: local
    clock times repeat the hour clocks go back, which --timezone tells apart."""
    if given is not None or offsets:
        return ""
    return (
        "; the times carry no UTC offset and were read as UTC: if they are local clock times, give --timezone "
        "(the hour clocks go back happens twice)"
    )


def choose_timezone(given: str | None, offsets: set[int]) -> tuple[str, str | None]:
    """The zone a dataset keeps (its local time of day and weekends are what the model reads):
    ``--timezone`` when given, else the one offset the file's times all carry (a fixed-offset
    zone, ``Etc/GMT-8`` for +08:00), else UTC; with a note, when not given, of what was chosen."""
    if given is not None:
        return check_timezone(given), None
    hint = "--timezone names a zone with its daylight-saving rules, e.g. America/Los_Angeles"
    if not offsets:
        return "UTC", f"the times carry no UTC offset and were read as UTC; if they are local clock times, {hint}"
    if len(offsets) > 1:
        written = ", ".join(_offset_text(pd.Timedelta(minutes=m)) for m in sorted(offsets))
        return "UTC", f"the times carry the UTC offsets {written} (daylight saving?) and are kept in UTC; {hint}"
    (minutes,) = offsets
    if minutes == 0:
        return "UTC", None
    written = _offset_text(pd.Timedelta(minutes=minutes))
    if minutes % 60 or not -12 <= minutes // 60 <= 14:  # the Etc zones are whole hours from -12 to +14
        return "UTC", f"the times carry the UTC offset {written}, kept in UTC; {hint}"
    zone = f"Etc/GMT{-minutes // 60:+d}"  # POSIX signs: Etc/GMT-8 is eight hours ahead of UTC
    return zone, f"the times carry the UTC offset {written}, kept as {zone} (UTC{written}, POSIX signs); {hint}"


def parse_row_times(
    text: pd.Series, timezone: str, where: str, *, first_line: int = 2, time_format: str | None = None
) -> Localised:
    """Times, one per row (``parse_times``): with offsets they are converted, without they are
    local to ``timezone``."""
    check_timezone(timezone)
    stamps = parse_times(text, where, first_line=first_line, time_format=time_format)
    if stamps.tz is not None:
        return Localised(stamps.tz_convert(timezone), None)
    return localise(stamps, timezone, where)


def parse_times(
    text: pd.Series, where: str, *, first_line: Lines = 2, time_format: str | None = None
) -> pd.DatetimeIndex:
    """Times, one per row, in ISO 8601 or in ``time_format`` (strptime codes: ``%m/%d/%Y %H:%M``):
    UTC instants if they carry a UTC offset (all or none must), naive wall-clock times if not.
    A blank or unreadable time names its line."""
    if text.empty:
        return pd.DatetimeIndex([])
    text = text.str.strip()
    blank = text.isna() | (text == "")
    if blank.any():
        raise InputError(where, f"{row_name(int(np.flatnonzero(blank)[0]), first_line)}: blank timestamp")
    if time_format is not None:
        stamps = _strptime(text, time_format, where, first_line)
        aware = stamps[0].tzinfo is not None  # all or none: a format has %z or not
        return pd.DatetimeIndex(pd.to_datetime(stamps, utc=True) if aware else stamps)
    has_offset = text.str.contains(_HAS_OFFSET, regex=True)
    if has_offset.any() and not has_offset.all():
        row = int(np.flatnonzero(has_offset != has_offset.iloc[0])[0])
        raise InputError(
            where, f"{row_name(row, first_line)}: {text.iloc[row]!r} mixes timestamps with and without a UTC offset"
        )
    parsed = pd.to_datetime(text, format="ISO8601", utc=bool(has_offset.iloc[0]), errors="coerce")
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            where,
            f"{row_name(row, first_line)}: {text.iloc[row]!r} is not an ISO 8601 timestamp (e.g. "
            f"2024-01-01T00:05:00); {time_format_hint(text.iloc[row], text.drop_duplicates().head(MAX_HINT_TEXTS))}",
        )
    return pd.DatetimeIndex(parsed)


def _offset_text(offset: pd.Timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass
class Grid:
    """Where each input row lands on the regular grid ``stamps``."""

    stamps: pd.DatetimeIndex
    rows: np.ndarray
    step: pd.Timedelta

    @property
    def inserted(self) -> int:
        return len(self.stamps) - len(self.rows)


def in_nanoseconds(stamps: pd.DatetimeIndex, where: str) -> pd.DatetimeIndex:
    """``stamps`` at the nanosecond resolution datasets keep (pandas may parse to seconds or
    microseconds); a mistyped year such as 9999 does not fit and is refused."""
    try:
        return stamps.as_unit("ns")
    except pd.errors.OutOfBoundsDatetime:
        raise InputError(
            where,
            f"times from {stamps.min()} to {stamps.max()}; expected times between {pd.Timestamp.min.date()} "
            f"and {pd.Timestamp.max.date()}",
        ) from None


# What an import may allocate for its grid: 500 M values are 2 GB of float32 (a month of 5-minute
# readings of 60,000 sensors). A time typed with the wrong year asks for far more from a few rows.
MAX_GRID_VALUES = 500_000_000
# How few rows beyond a long gap make them a mistyped time rather than data (a share of all rows).
LONE_ROWS = 0.02


def regular_grid(
    stamps: pd.DatetimeIndex,
    where: str,
    *,
    first_line: Lines = 2,
    columns: int = 1,
    max_values: int = MAX_GRID_VALUES,
    if_repeated: str = "",
    counted: str = "rows",
) -> Grid:
    """Place tz-aware ``stamps`` (one per input row, any order) on the regular grid they span.

    The step is the most common gap between consecutive times; gaps that are a multiple of it
    become missing steps; any other gap, or a repeated time, is an error naming the row's line
    (``first_line`` is the file line of row 0, or each row's line; None names 0-based rows, for
    non-text sources).
    A grid of more than ``max_values`` values (steps x ``columns``) is refused before it exists;
    ``if_repeated`` ends the message of a repeated time (a hint at what such a file may be);
    ``counted`` names what ``stamps`` are in messages (a long file gives its distinct times).
    """
    if len(stamps) < 2:
        raise InputError(where, f"{len(stamps)} time step(s); need at least two to know the interval")
    missing = np.flatnonzero(stamps.isna())
    if len(missing):  # NaT sorts first and would be blamed on the row after it
        raise InputError(where, f"{row_name(int(missing[0]), first_line)}: no time (NaT); expected a time on every row")
    stamps = in_nanoseconds(stamps, where)
    order = np.argsort(stamps.asi8, kind="stable")
    sorted_ns = stamps.asi8[order]
    gaps = np.diff(sorted_ns)
    repeated = np.flatnonzero(gaps == 0)
    if len(repeated):
        row = int(order[repeated[0] + 1])
        raise InputError(
            where, f"{row_name(row, first_line)}: time {stamps[row].isoformat()} appears twice{if_repeated}"
        )
    values, counts = np.unique(gaps, return_counts=True)
    step = int(values[np.argmax(counts)])
    irregular = np.flatnonzero(gaps % step)
    if len(irregular):
        row = int(order[irregular[0] + 1])
        raise InputError(
            where,
            f"{row_name(row, first_line)}: time {stamps[row].isoformat()} is off the regular "
            f"{interval_text(pd.Timedelta(step))} grid "
            f"(it follows {stamps[int(order[irregular[0]])].isoformat()})",
        )
    _refuse_a_lone_time(stamps, order, gaps, step, where, first_line, counted)
    periods = int((sorted_ns[-1] - sorted_ns[0]) // step) + 1
    if periods * columns > max_values:
        raise InputError(
            where,
            f"{len(stamps):,} {counted} from {stamps[order[0]].isoformat()} to {stamps[order[-1]].isoformat()} span "
            f"{periods:,} steps of {interval_text(pd.Timedelta(step))}: {periods * columns:,} values, more than "
            f"the limit of {max_values:,}; check the times (a mistyped year?), or raise the limit "
            "(wide-csv, long-csv: --max-values)",
        )
    grid = pd.date_range(stamps[order[0]], periods=periods, freq=pd.Timedelta(step))
    return Grid(stamps=grid, rows=((stamps.asi8 - sorted_ns[0]) // step).astype(np.int64), step=pd.Timedelta(step))


def _refuse_a_lone_time(
    stamps: pd.DatetimeIndex,
    order: np.ndarray,
    gaps: np.ndarray,
    step: int,
    where: str,
    first_line: Lines,
    counted: str,
) -> None:
    """A time typed with the wrong year (2042 for 2024) leaves a row or a few far from all the
    others, and the grid fills the gap with missing steps: a dataset almost wholly empty, imported
    without a word. Refused: a gap of ten times more missing steps than the file has rows, with
    no more than ``LONE_ROWS`` of them (at least 3) on one side. Two campaigns a year apart are
    not: each side of their gap holds many rows."""
    rows = len(order)
    lone_limit = max(3, int(rows * LONE_ROWS))
    missing_steps = gaps // step - 1
    for gap in np.flatnonzero(missing_steps >= 10 * rows):
        before, after = gap + 1, rows - gap - 1
        if min(before, after) > lone_limit:
            continue
        lone = order[:before] if before <= after else order[before:]
        row = int(lone.min())
        raise InputError(
            where,
            f"{row_name(row, first_line)}: time {stamps[row].isoformat()} lies {pd.Timedelta(int(gaps[gap]))} from "
            f"the other {counted} ({len(lone)} of them on its side of {int(missing_steps[gap]):,} missing steps): a "
            "mistyped time, or a reading after a long outage? Correct or remove it",
        )


def place_on_grid(values: np.ndarray, grid: Grid) -> np.ndarray:
    """Rows of ``values`` [rows, ...] moved to their grid positions; grid steps without a row are NaN."""
    if grid.inserted == 0 and (grid.rows == np.arange(len(grid.rows))).all():
        return values
    out = np.full((len(grid.stamps), *values.shape[1:]), np.nan, dtype=values.dtype)
    out[grid.rows] = values
    return out
