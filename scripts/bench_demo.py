"""Time the demo network generator (and the quality report on its output) by network size.

The CTM loop runs over time steps (20 s) with every cell of every line in one numpy array, so
cost grows with days and only mildly with sensors. Prints a markdown table.

  python scripts/bench_demo.py
  python scripts/bench_demo.py --sensors 48 400 --days 28
"""

from __future__ import annotations

import argparse
import time

from social_xlstm.data.demo import make_demo
from social_xlstm.data.quality import quality_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--days", type=int, nargs="+", default=[2])
    parser.add_argument("--interval", default="5min")
    args = parser.parse_args()
    print("| sensors | days | steps | make_demo (s) | quality_report (s) |")
    print("|---:|---:|---:|---:|---:|")
    for days in args.days:
        for sensors in args.sensors:
            start = time.perf_counter()
            ds = make_demo(sensors=sensors, days=days, interval=args.interval)
            made = time.perf_counter()
            quality_report(ds)
            done = time.perf_counter()
            print(f"| {sensors} | {days} | {len(ds.timestamps)} | {made - start:.2f} | {done - made:.2f} |", flush=True)


if __name__ == "__main__":
    main()
