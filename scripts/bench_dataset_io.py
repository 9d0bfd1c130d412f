"""Time and peak memory of writing and reading a dataset directory as the grid grows.

Every importer ends in ``write_dataset`` and every command that trains, evaluates or serves
starts with ``read_dataset``; both turn the dense ``[steps, sensors, features]`` array into the
long readings table (one row per step and sensor) and back. Each point makes a random dataset
of that shape (20% missing) in a fresh child process, writes it, and reads it back in another,
so that each peak RSS is that step's own. The goal: memory near the dense array itself, never
a multiple of it for the long table.

  python scripts/bench_dataset_io.py
  python scripts/bench_dataset_io.py --sensors 1950 --steps 288 2016 8640
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchreport import Table, add_doc_option, measure_in_child, peak_rss_mib

FEATURES = ["flow", "speed", "occupancy"]


def _measure_write(out: str, steps: int, sensors: int) -> dict:
    import numpy as np
    import pandas as pd

    from social_xlstm.data.dataset import Dataset, write_dataset

    values = np.random.default_rng(0).standard_normal((steps, sensors, len(FEATURES)), dtype=np.float32)
    values[values < -0.84] = np.nan  # about 20% missing; made in place, so 'before' is the array itself
    values *= 10
    values += 50
    np.round(values, 1, out=values)  # readings have a resolution (km/h, vehicles): parquet's dictionaries see it
    ds = Dataset(
        values=values,
        features=FEATURES,
        meta={"interval": "5min", "name": "bench"},
        timestamps=pd.date_range("2025-03-01", periods=steps, freq="5min", tz="Asia/Taipei"),
        sensors=pd.DataFrame(
            {"sensor_id": [f"VD-11-0020-{i:05d}-01:E" for i in range(sensors)], "latitude": 25.0, "longitude": 121.5}
        ),
    )
    baseline = peak_rss_mib()
    start = time.perf_counter()
    write_dataset(ds, Path(out))
    return {
        "seconds": time.perf_counter() - start,
        "baseline_mib": baseline,
        "peak_mib": peak_rss_mib(),
        "array_mib": values.nbytes / 2**20,
        "file_mib": (Path(out) / "readings.parquet").stat().st_size / 2**20,
    }


def _measure_read(out: str) -> dict:
    """Child process: read a dataset directory into memory, as training does (bench_taiwan_import uses it too)."""
    from social_xlstm.data.dataset import read_dataset

    baseline = peak_rss_mib()
    start = time.perf_counter()
    values = read_dataset(Path(out)).values
    return {
        "seconds": time.perf_counter() - start,
        "baseline_mib": baseline,
        "peak_mib": peak_rss_mib(),
        "array_mib": values.nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sensors", type=int, nargs="+", default=[1950], help="sensors (several values: one point each)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[288, 2016, 8640],
        help="time steps (several values: one point each; 8640 = a month of 5-minute intervals)",
    )
    parser.add_argument("--measure-write", nargs=3, metavar=("OUT", "STEPS", "SENSORS"), help=argparse.SUPPRESS)
    parser.add_argument("--measure-read", metavar="OUT", help=argparse.SUPPRESS)
    add_doc_option(parser)
    args = parser.parse_args()
    if args.measure_write:
        out, steps, sensors = args.measure_write
        print(json.dumps(_measure_write(out, int(steps), int(sensors))))
        return
    if args.measure_read:
        print(json.dumps(_measure_read(args.measure_read)))
        return

    table = Table(
        "bench_dataset_io",
        "Dataset directory: write and read as the grid grows",
        [
            "sensors",
            "steps",
            "readings rows",
            "dense array MiB",
            "parquet MiB",
            "write s",
            "write peak RSS MiB (before)",
            "read s",
            "read peak RSS MiB (before)",
        ],
        right_aligned=7,
    )
    for sensors in args.sensors:
        for steps in args.steps:
            with tempfile.TemporaryDirectory(prefix="bench-dataset-io-") as tmp:
                out = str(Path(tmp) / "dataset")
                w = measure_in_child(__file__, "--measure-write", out, str(steps), str(sensors))
                r = measure_in_child(__file__, "--measure-read", out)
            table.add(
                sensors,
                steps,
                f"{steps * sensors:,}",
                f"{w['array_mib']:.0f}",
                f"{w['file_mib']:.0f}",
                f"{w['seconds']:.2f}",
                f"{w['peak_mib']:.0f} ({w['baseline_mib']:.0f})",
                f"{r['seconds']:.2f}",
                f"{r['peak_mib']:.0f} ({r['baseline_mib']:.0f})",
            )
    if not args.no_doc:
        from social_xlstm.data.readings_table import ROWS_PER_GROUP

        table.write(
            "Each write and each read runs in a fresh process; 'before' is its peak RSS just before the "
            "call (for the write, with the dense array already made). The readings are written in row groups "
            f"of about {ROWS_PER_GROUP:,} rows (readings_table.ROWS_PER_GROUP) and read back a row group at a "
            "time, so neither side holds the whole long table."
        )


if __name__ == "__main__":
    main()
