"""Time the demo network generator (and the quality report on its output) by network size.

The CTM loop runs over time steps (20 s) with every cell of every line in one numpy array, so
cost grows with days and only mildly with sensors. Prints a markdown table.

  python scripts/bench_demo.py
  python scripts/bench_demo.py --sensors 48 400 --days 28
"""

from __future__ import annotations

import argparse
import time

from benchreport import Table, add_doc_option

from social_xlstm.data.demo import make_demo
from social_xlstm.data.quality import quality_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--days", type=int, nargs="+", default=[2])
    parser.add_argument("--interval", default="5min")
    add_doc_option(parser)
    args = parser.parse_args()
    table = Table(
        "bench_demo",
        "Demo network generator",
        ["sensors", "days", "steps", "make_demo (s)", "quality_report (s)"],
        right_aligned=5,
    )
    for days in args.days:
        for sensors in args.sensors:
            start = time.perf_counter()
            ds = make_demo(sensors=sensors, days=days, interval=args.interval)
            made = time.perf_counter()
            quality_report(ds)
            done = time.perf_counter()
            table.add(sensors, days, len(ds.timestamps), f"{made - start:.2f}", f"{done - made:.2f}")
    if not args.no_doc:
        table.write()


if __name__ == "__main__":
    main()
