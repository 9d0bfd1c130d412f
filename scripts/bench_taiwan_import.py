"""Throughput and peak memory of the taiwan-vd importer on a generated feed.

Writes N VDs over M minutes of snapshots with the feed writer (the collector's folder layout,
a VDList copy in every snapshot, as real archives have), then imports them and writes the
dataset directory (as the CLI does) in a fresh child process, so that its peak RSS (getrusage)
is the import's alone (parse worker processes, started only for large inputs, are not
included), and reads the dataset back in another (as training does). Several --minutes values
show whether memory stays flat as the number of snapshots grows; --every spaces the snapshots
out, so a month's span (and its interval grid) is measured without parsing all 43,200 minutes
of it.
Prints a markdown table.

  python scripts/bench_taiwan_import.py
  python scripts/bench_taiwan_import.py --vds 1500 --minutes 60 240 --workers 1 8 --fmt json --pack zip
  python scripts/bench_taiwan_import.py --vds 1500 --minutes 1440 43200 --every 2 60
  python scripts/bench_taiwan_import.py --vds 1500 --minutes 43200 --every 1 --workers 2 --pack zip --no-doc
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

# the feed generator is a test fixture (tests/taiwan_feed.py), not part of the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import bench_dataset_io
from benchreport import Table, add_doc_option, measure_in_child, peak_rss_mib

MINUTES_PER_DAY = 1440


def _measure_import(feed: str, out: str, interval: str, workers: int | None) -> dict:
    """Child process: import the feed and write the dataset directory, as the CLI does."""
    from social_xlstm.data.dataset import write_dataset
    from social_xlstm.data.importers.taiwan_vd import import_taiwan_vd

    baseline = peak_rss_mib()
    start = time.perf_counter()
    stream = import_taiwan_vd([Path(feed)], interval=interval, workers=workers)
    written = write_dataset(stream, Path(out))
    counts = stream.meta["import_counts"]
    return {
        "seconds": time.perf_counter() - start,
        "records": counts["live_records_read"],
        "snapshots": counts["vdlivelist_files"],
        "shape": [written["counts"][key] for key in ("timesteps", "sensors")],
        "baseline_mib": baseline,
        "peak_mib": peak_rss_mib(),
    }


def _write_feed(root: Path, spec) -> Path:
    """The feed to import. An archived feed longer than a day is written as one archive per day,
    as collectors batch them (a month of minutes would not fit on disk unpacked), the days in
    parallel. Every day has the same seed, so the same detectors and links (a VDList version a
    day, as the THB feed publishes) and the same draws of readings at that day's times."""
    from taiwan_feed import write_feed

    if spec.pack is None or spec.minutes <= MINUTES_PER_DAY:
        return write_feed(root, spec)
    first = datetime.fromisoformat(spec.start)
    days = [
        replace(
            spec,
            start=(first + timedelta(days=day)).isoformat(),
            minutes=min(MINUTES_PER_DAY, spec.minutes - day * MINUTES_PER_DAY),
        )
        for day in range(math.ceil(spec.minutes / MINUTES_PER_DAY))
    ]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_feed, [root / f"day-{day:03d}" for day in range(len(days))], days))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vds", type=int, default=100, help="detectors in the feed")
    parser.add_argument(
        "--minutes",
        type=int,
        nargs="+",
        default=[30, 120],
        help="minutes the feed spans (several values: one run each)",
    )
    parser.add_argument(
        "--every",
        type=int,
        nargs="+",
        default=[1],
        help="minutes between snapshots, one value for all --minutes or one per value",
    )
    parser.add_argument("--fmt", choices=["xml", "json"], default="xml")
    parser.add_argument("--pack", choices=["none", "zip", "7z"], default="none")
    parser.add_argument("--interval", default="5min")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="parse processes (several values: one run each)"
    )
    parser.add_argument("--measure", nargs=2, metavar=("FEED", "OUT"), help=argparse.SUPPRESS)
    add_doc_option(parser)
    args = parser.parse_args()
    if len(args.every) not in (1, len(args.minutes)) or min(args.every) < 1:
        parser.error(f"--every takes one value >= 1 or one per --minutes value, got {args.every}")
    if args.measure:
        print(json.dumps(_measure_import(*args.measure, args.interval, args.workers[0])))
        return

    from taiwan_feed import FeedSpec

    table = Table(
        "bench_taiwan_import",
        "Taiwan VD import throughput and memory",
        [
            "VDs",
            "minutes",
            "every",
            "format",
            "workers",
            "link records",
            "grid steps x sensors",
            "import + write s",
            "records/s",
            "snapshots/s",
            "peak RSS MiB (baseline)",
            "read back s",
            "read peak RSS MiB (baseline, array)",
        ],
        right_aligned=8,
    )
    every = args.every * len(args.minutes) if len(args.every) == 1 else args.every
    for minutes, step in zip(args.minutes, every):
        spec = FeedSpec(
            n_vds=args.vds,
            minutes=minutes,
            every=step,
            seed=1,
            sentinel_rate=0.01,
            duplicate_rate=0.05,
            skipped_minute_rate=0.01,
            pad_live_ids=True,
            fmt=args.fmt,
            pack=None if args.pack == "none" else args.pack,
        )
        with tempfile.TemporaryDirectory(prefix="bench-taiwan-") as tmp:
            target = _write_feed(Path(tmp) / "feed", spec)
            for workers in args.workers:
                out = str(Path(tmp) / f"dataset-{workers}")
                m = measure_in_child(
                    __file__, "--measure", str(target), out, "--interval", args.interval, "--workers", str(workers)
                )
                r = measure_in_child(bench_dataset_io.__file__, "--measure-read", out)
                table.add(
                    args.vds,
                    minutes,
                    step,
                    f"{args.fmt}/{args.pack}",
                    workers,
                    m["records"],
                    f"{m['shape'][0]} x {m['shape'][1]}",
                    f"{m['seconds']:.2f}",
                    f"{m['records'] / m['seconds']:,.0f}",
                    f"{m['snapshots'] / m['seconds']:.1f}",
                    f"{m['peak_mib']:.0f} ({m['baseline_mib']:.0f})",
                    f"{r['seconds']:.2f}",
                    f"{r['peak_mib']:.0f} ({r['baseline_mib']:.0f}, array {r['array_mib']:.0f})",
                )
    if not args.no_doc:
        table.write(
            "Each row imports the feed and writes the dataset directory in one child process, as "
            "`social-xlstm data import taiwan-vd` does, then reads it back into the dense array in another, "
            "as training does; peak RSS is each child's own (getrusage). Rows of equal span and different "
            "--every show whether memory follows the files read; rows of different span and the same "
            "number of files, whether it follows the span of time."
        )


if __name__ == "__main__":
    main()
