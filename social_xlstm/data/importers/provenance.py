"""meta.json fields every table importer records: where the data came from and what its numbers mean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from social_xlstm.data.importers.timeline import interval_text

# Bump when an importer's reading of its format changes, so datasets can be re-imported.
IMPORT_VERSION = 1


def table_meta(
    *,
    format_name: str,
    source: str,
    licence: str,
    step: pd.Timedelta,
    units: Mapping[str, str],
    missing_value_convention: str,
    missing_values: Sequence[float],
    inputs: Mapping[str, str | Path | list[Path] | None],
    name: str | None,
    **extra,
) -> dict:
    """The common meta dict; ``inputs`` maps each role (readings, edges, ...) to its file, or
    its files (a list, kept as a list of names)."""
    meta = {
        "source": source,
        "licence": licence,
        "interval": interval_text(step),
        "units": dict(units),
        "missing_value_convention": missing_value_convention,
        "missing_values": [float(v) for v in missing_values],
        "importer": {"format": format_name, "version": IMPORT_VERSION},
        "input_files": {
            role: [Path(p).name for p in path] if isinstance(path, list) else Path(path).name
            for role, path in inputs.items()
            if path is not None
        },
        **extra,
    }
    if name is not None:
        meta["name"] = name
    return meta
