"""A large CSV read a block at a time, for the long table (a row per reading) that is never
read whole: pyarrow's streaming reader under the header's cleaned names (and the file's own
separator and decimal mark, ``csv_dialect``), each text column as codes into its distinct
values, and the file line of any row, found only when an error names it. Several files with
one header are read one after the other as one table (``CsvFiles``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from social_xlstm.data.importers.csv_dialect import dialect_of
from social_xlstm.data.importers.csv_tables import first_non_number
from social_xlstm.errors import InputError

# Bytes of text parsed at a time: a block's table is a few times this, whatever the file's size
# (16 MiB blocks kept 270 MiB in arrow's pool, docs/benchmarks-journal.md).
BLOCK_BYTES = 4 << 20


class FileLines:
    """The file line on which each data row starts, as an editor numbers lines. Counted with
    Python's csv reader, which, like pyarrow's, skips blank lines and keeps a newline inside a
    quoted cell; pyarrow counts neither. Only an error asks, so the file is read again then."""

    def __init__(self, path: Path):
        self.path = path

    def of(self, row: int) -> int:
        with self.path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream, delimiter=dialect_of(self.path).delimiter)
            next(reader, None)  # the header
            start, seen = reader.line_num + 1, 0
            for record in reader:
                if record:
                    if seen == row:
                        return start
                    seen += 1
                start = reader.line_num + 1
        return start


@dataclass
class Block:
    """One parsed block: its table and the data row (0-based) of its file its first row is."""

    table: pa.Table
    first_row: int
    lines: FileLines

    @property
    def path(self) -> Path:
        return self.lines.path

    def line(self, row: int) -> int:
        return self.lines.of(self.first_row + row)


@dataclass(frozen=True)
class CsvFiles:
    """Files with one header read as one table, in the order given: an export of a file per day
    or per detector. Each block knows its file, so an error names the file and its line."""

    paths: tuple[Path, ...]

    def __post_init__(self):
        if not self.paths:
            raise InputError("readings", "no file given")
        seen: set[Path] = set()
        for path in self.paths:
            if path.resolve() in seen:
                raise InputError(path, "given twice")
            seen.add(path.resolve())

    def __str__(self) -> str:
        """The one file, or the first and the last of several (what an error about them all names)."""
        first, last = self.paths[0], self.paths[-1]
        return str(first) if len(self.paths) == 1 else f"{first} .. {last.name} ({len(self.paths)} files)"

    @property
    def several(self) -> bool:
        return len(self.paths) > 1

    def blocks(
        self, names: Sequence[str], columns: Sequence[str], *, numeric: Sequence[str] = (), hint: str = ""
    ) -> Iterator[Block]:
        """``read_blocks`` of every file in turn."""
        for path in self.paths:
            yield from read_blocks(path, names, columns, numeric=numeric, hint=hint)


@dataclass
class Coded:
    """A text column as each row's index into its distinct values (in order of first appearance):
    a long file repeats each time once per sensor and each id once per time, so a distinct text
    is parsed or looked up once."""

    rows: np.ndarray
    distinct: pd.Series


def coded(cells: pa.ChunkedArray) -> Coded:
    encoded = cells.combine_chunks().dictionary_encode()
    return Coded(rows=encoded.indices.to_numpy(zero_copy_only=False), distinct=encoded.dictionary.to_pandas())


def read_blocks(
    path: Path, names: Sequence[str], columns: Sequence[str], *, numeric: Sequence[str] = (), hint: str = ""
) -> Iterator[Block]:
    """``columns`` of the CSV at ``path``, whose header is ``names`` (cleaned), a block at a time:
    ``numeric`` ones as floats (a blank, NA or NaN cell is missing), the others as text, never
    missing (an id 'NA' is an id). A cell that is not a number names its column and line, then
    ``hint``."""
    text = [name for name in columns if name not in numeric]
    lines = FileLines(path)
    try:
        yield from _parse(path, names, text, numeric, lines)
    except pa.ArrowInvalid as exc:
        if numeric and "conversion error" in str(exc):
            _name_the_non_number(path, names, numeric, lines, hint)
        raise InputError(path, f"malformed CSV: {' '.join(str(exc).split())}") from None


def _parse(path, names, text, numeric, lines, *, nullable_text: bool = False) -> Iterator[Block]:
    types = {name: pa.string() for name in text} | {name: pa.float64() for name in numeric}
    dialect = dialect_of(path)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, column_names=list(names), skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=dialect.delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=[*text, *numeric],
            strings_can_be_null=nullable_text,
            decimal_point=dialect.decimal,
        ),
    )
    first_row = 0
    for batch in reader:
        if batch.num_rows:  # a block of blank lines parses to no rows
            yield Block(pa.Table.from_batches([batch]), first_row, lines)
            first_row += batch.num_rows


def _name_the_non_number(path: Path, names: Sequence[str], numeric: Sequence[str], lines: FileLines, hint: str) -> None:
    """Find the cell that stopped a typed read (pyarrow's error names neither line nor value):
    the same columns as text, with the cells the typed read takes for missing as missing."""
    for block in _parse(path, names, numeric, (), lines, nullable_text=True):
        for name in numeric:
            cells = block.table.column(name).to_pandas()
            dialect = dialect_of(path)
            row = first_non_number(cells, dialect=dialect)
            if row is not None:
                cell = cells.iloc[row]
                raise InputError(
                    path,
                    f"column {name!r}, line {block.line(row)}: {cell!r} is not a number{dialect.hint(cell)}{hint}",
                )
