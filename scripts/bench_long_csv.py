"""Time and peak memory of `data import long-csv` as the file grows.

A long CSV holds one row per time and sensor, so a month of 1,950 detectors is 17 M rows and
about a gigabyte of text. The importer reads it in blocks, twice, so its memory should follow
the dense grid it builds (steps x sensors x features), not the file. Each point writes a long
CSV of that shape (3 features, 5% of the rows left out as outages, rows in time order as
exports come), then imports it in a fresh child process, so each peak RSS is that import's own.

  python scripts/bench_long_csv.py
  python scripts/bench_long_csv.py --sensors 1950 --steps 288 2016 8640
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchreport import Table, add_doc_option, measure_in_child, peak_rss_mib

FEATURES = ["flow", "speed", "occupancy"]
STEPS_PER_CHUNK = 96  # rows written a few hundred thousand at a time


def _write_long_csv(folder: Path, steps: int, sensors: int) -> tuple[Path, Path, int]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    ids = np.array([f"VD-11-0020-{i:05d}-01:E" for i in range(sensors)])
    times = pd.date_range("2025-03-01", periods=steps, freq="5min", tz="Asia/Taipei")
    readings, rows = folder / "readings.csv", 0
    for first in range(0, steps, STEPS_PER_CHUNK):
        stamps = times[first : first + STEPS_PER_CHUNK].strftime("%Y-%m-%dT%H:%M:%S+08:00").to_numpy()
        kept = rng.random(len(stamps) * sensors) >= 0.05
        frame = pd.DataFrame(
            {
                "timestamp": np.repeat(stamps, sensors)[kept],
                "sensor_id": np.tile(ids, len(stamps))[kept],
                **{name: rng.integers(0, 120, int(kept.sum())) for name in FEATURES},
            }
        )
        frame.to_csv(readings, mode="a" if first else "w", header=not first, index=False)
        rows += len(frame)
    located = folder / "sensors.csv"
    pd.DataFrame({"sensor_id": ids, "latitude": 25.0, "longitude": 121.5}).to_csv(located, index=False)
    return readings, located, rows


def _measure_import(readings: str, sensors: str) -> dict:
    """Child process: import the long CSV into memory, as `data import long-csv` does before writing."""
    from social_xlstm.data.importers.long_csv import import_long_csv

    baseline = peak_rss_mib()
    start = time.perf_counter()
    values = import_long_csv(readings, sensors, timezone="Asia/Taipei").values
    return {
        "seconds": time.perf_counter() - start,
        "baseline_mib": baseline,
        "peak_mib": peak_rss_mib(),
        "grid_mib": values.nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sensors", type=int, nargs="+", default=[1950], help="sensors (one point each)")
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[288, 2016, 8640], help="time steps (one point each; 8640: a month)"
    )
    parser.add_argument("--measure-import", nargs=2, metavar=("READINGS", "SENSORS"), help=argparse.SUPPRESS)
    add_doc_option(parser)
    args = parser.parse_args()
    if args.measure_import:
        print(json.dumps(_measure_import(*args.measure_import)))
        return

    table = Table(
        "bench_long_csv",
        "long-csv import as the file grows",
        ["sensors", "steps", "rows", "file MiB", "grid MiB", "import s", "rows/s", "peak RSS MiB (before)"],
        right_aligned=7,
    )
    for sensors in args.sensors:
        for steps in args.steps:
            with tempfile.TemporaryDirectory(prefix="bench-long-csv-") as tmp:
                readings, located, rows = _write_long_csv(Path(tmp), steps, sensors)
                size = readings.stat().st_size / 2**20
                m = measure_in_child(__file__, "--measure-import", str(readings), str(located))
            table.add(
                sensors,
                steps,
                f"{rows:,}",
                f"{size:.0f}",
                f"{m['grid_mib']:.0f}",
                f"{m['seconds']:.1f}",
                f"{rows / m['seconds']:,.0f}",
                f"{m['peak_mib']:.0f} ({m['baseline_mib']:.0f})",
            )
    if not args.no_doc:
        from social_xlstm.data.importers.csv_blocks import BLOCK_BYTES

        table.write(
            "Each import runs in a fresh process; 'before' is its peak RSS just before the call (Python, "
            "numpy, pandas and pyarrow loaded). The file is parsed in blocks of "
            f"{BLOCK_BYTES >> 20} MiB (csv_blocks.BLOCK_BYTES), twice: times and sensors first, then the "
            "readings onto the grid. The dataset directory's write is measured apart (bench_dataset_io.py)."
        )


if __name__ == "__main__":
    main()
