"""Forecast latency of an export bundle: one window through model.onnx, and one new reading per
VD through model_step.onnx, with onnxruntime on this machine (p50 / p99 over many calls).

`Bundle.forecast` adds what a caller does around the session (checks, local time of week); the
`session` rows time the ONNX graph alone. Goal (issue 6): under 20 ms per window for the
207-sensor Los-loop model.

  python scripts/bench_onnx_latency.py runs/bench/los_loop-project-default-seed0 --data data/los-loop/dataset
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from benchreport import Table, add_bundle_argument, add_doc_option, bundle_of

from social_xlstm.data.dataset import read_dataset
from social_xlstm.export.bundle import Bundle
from social_xlstm.export.predict import latest_window
from social_xlstm.timefeatures import seconds_of_week


def interleaved_ms(calls: dict, total: int, rounds: int, warmup: int = 10) -> dict[str, list[float]]:
    """Milliseconds per call of each function, timed in ``rounds`` alternating blocks, so that a
    shared VM's speed drifting over the run reaches every row alike. Each block holds
    ``total / rounds`` calls, rounded up, so a row gets at least ``total``."""
    times = {name: [] for name in calls}
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in calls.items():
            for _ in range(-(-total // rounds)):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bundle_argument(parser)
    parser.add_argument("--data", type=Path, required=True, help="dataset directory to take the latest window from")
    parser.add_argument("--calls", type=int, default=500, help="timed calls per row")
    parser.add_argument(
        "--rounds", type=int, default=5, help="blocks the calls of every row are split into, alternating"
    )
    add_doc_option(parser)
    args = parser.parse_args()
    if args.calls < 1 or args.rounds < 1:
        parser.error(f"--calls and --rounds must be at least 1, got {args.calls} and {args.rounds}")

    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        bundle = Bundle.load(bundle_of(args.run_or_bundle, Path(tmp)))
        values, timestamps = latest_window(read_dataset(args.data), bundle, None)
        seconds = seconds_of_week(timestamps, bundle.timezone)
        stream = bundle.stream()
        for t in range(len(timestamps) - 1):
            stream.update(values[t], timestamps[t])
        state = stream.state
        reading, step_seconds = values[-1:], seconds[-1:]
        n, f = values.shape[1:]
        table = Table(
            f"bench_onnx_latency-{n}",
            f"Export bundle latency, {n} sensors x {f} features",
            ["call", "sensors", "input_len", "p50 ms", "p99 ms"],
            right_aligned=2,
        )
        rows = {
            "model.onnx session (one window)": lambda: bundle.run_window(values[None], seconds[None]),
            "Bundle.forecast (one window)": lambda: bundle.forecast(values, timestamps),
            "model_step.onnx session (one reading)": lambda: bundle.run_step(reading, step_seconds, state),
        }
        timed = interleaved_ms(rows, args.calls, args.rounds)
        for name, times in timed.items():
            p50, p99 = np.percentile(times, [50, 99])
            table.add(name, n, bundle.input_len, f"{p50:.2f}", f"{p99:.2f}")
    if not args.no_doc:
        table.write(
            f"onnxruntime CPUExecutionProvider, {len(timed[next(iter(rows))])} calls per row after 10 warm-up calls, "
            f"in {args.rounds} alternating blocks; bundle of `{args.run_or_bundle}`."
        )


if __name__ == "__main__":
    main()
