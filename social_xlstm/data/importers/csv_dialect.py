"""How a CSV writes its fields and numbers, read from the file itself.

Spreadsheets in much of Europe save "CSV" with semicolons between fields and a decimal comma
(``12,5``), and many exports use tabs. Each file's first line says which of comma, semicolon
or tab separates its fields (the one that splits it into the most fields); in a file that does
not separate by commas, a number written ``12,5`` in its first MiB says its decimal mark is a
comma. A file that writes numbers both ways there is refused: no reading of it is safe. A cell
such as ``1.234`` or ``1,234`` could hold a thousands separator, so it is no evidence either way.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from social_xlstm.errors import InputError

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
SAMPLE_BYTES = 1 << 20
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")
_DECIMAL_POINT = re.compile(r"[+-]?\d*\.\d+([eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}[.,]\d{3}")  # 1.234: a decimal, or a thousand and more?
_NUMBER = re.compile(r"[+-]?\d*[.,]?\d+([eE][+-]?\d+)?")


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str = ","
    decimal: str = "."

    @property
    def plain(self) -> bool:
        """Comma-separated with decimal points: what needs no mention."""
        return self == CsvDialect()

    def describe(self) -> str:
        mark = "decimal commas" if self.decimal == "," else "decimal points"
        return f"{DELIMITERS[self.delimiter]}-separated, {mark}"

    def numbers(self, text: pd.Series) -> pd.Series:
        """Text cells as numbers (NaN where a cell is not one), with this file's decimal mark: in a
        decimal-comma file a cell with a point is not a number, as pyarrow reads it."""
        if self.decimal == ".":
            return pd.to_numeric(text, errors="coerce")
        pointed = text.str.contains(".", regex=False).fillna(False).astype(bool)
        values = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
        return values.mask(pointed)

    def hint(self, cell: str) -> str:
        """What to add when ``cell`` was no number: that its decimal mark is not the one this
        file was read with (found in its first MiB)."""
        cell = cell.strip()
        if self.delimiter != "," and self.decimal == "." and _DECIMAL_COMMA.fullmatch(cell):
            return "; the file was read with decimal points (its first MiB writes no number with a decimal comma)"
        if self.decimal == "," and _DECIMAL_POINT.fullmatch(cell):
            return "; the file was read with decimal commas, as its first MiB writes numbers"
        return ""


def dialect_of(path: Path) -> CsvDialect:
    """The separator of ``path``'s first line and, where it is not a comma, the decimal mark
    of the numbers in its first MiB (found once per version of the file: each reader asks)."""
    stat = path.stat()
    return _dialect(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _dialect(path: Path, _mtime_ns: int, _size: int) -> CsvDialect:
    with path.open("rb") as stream:
        raw = stream.read(SAMPLE_BYTES)
    lines = raw.decode("utf-8-sig", errors="replace").splitlines()
    if len(raw) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last may be cut short
    if not lines:
        return CsvDialect()
    delimiter = _separator(lines[0])
    if delimiter == ",":
        return CsvDialect()
    comma, point = (
        _first_number_written(lines, delimiter, _DECIMAL_COMMA),
        _first_number_written(lines, delimiter, _DECIMAL_POINT),
    )
    if comma and point:
        raise InputError(
            path,
            f"numbers are written with a decimal comma (line {comma[0]}: {comma[1]!r}) and with a decimal point "
            f"(line {point[0]}: {point[1]!r}); write them one way",
        )
    return CsvDialect(delimiter, "," if comma else ".")


def _separator(first_line: str) -> str:
    """The candidate that splits the first line into the most fields; on a tie, not the comma: a
    line that splits alike on both (``VD-01;25,5;121,5``, a headerless list) has decimal commas.
    A line of one field is a comma-separated file of one column."""
    fields = {d: len(next(csv.reader([first_line], delimiter=d), [])) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (fields[d], d != ","))
    return best if fields[best] > 1 else ","


def _first_number_written(lines: list[str], delimiter: str, pattern: re.Pattern) -> tuple[int, str] | None:
    """(line, cell) of the first data cell that is a number written as ``pattern`` says, and not
    one a thousands separator could have written; the first line counts when it is all numbers
    (a headerless file)."""
    header = next(csv.reader(lines[:1], delimiter=delimiter), [])
    first = 0 if all(_NUMBER.fullmatch(cell.strip()) for cell in header) else 1
    reader = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=delimiter)
    for record in reader:
        for cell in record:
            cell = cell.strip()
            if pattern.fullmatch(cell) and not _THOUSANDS.fullmatch(cell):
                return reader.line_num + first, cell
    return None
