"""Time and peak memory of one training step and of one inference pass as the network grows
(sensors, on the demo simulator) and as the input history grows (steps), with fitted slopes.

Each point runs in a fresh child process, so its peak resident memory (getrusage) belongs to
that point alone; the child also reports its resident memory before the model exists, so the
table shows what the step itself adds. A training step is forward + masked loss + backward +
AdamW update of the default Social-xLSTM (sLSTM encoder, attention pooling, mLSTM stack) on a
batch of real demo windows; inference is the forward pass under ``torch.no_grad``. Times are
the median of ``--repeats`` after one warm-up. With ``--device cuda`` the model runs on the GPU
(the Triton kernels) and the table adds the peak CUDA memory of the step.

Linear growth shows as a log-log slope near 1 (time ~ size^slope); the least-squares line
time = a + b * size gives the cost per extra sensor or step.

  python scripts/bench_scale.py
  python scripts/bench_scale.py --sensors 100 1000 5000 20000 --steps 12 96 288 1008 2016
  python scripts/bench_scale.py --device cuda --sensors 1000 20000 100000 --steps 12 288 2016 --sensors-for-steps 1000
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import time

from benchreport import Table, add_doc_option, add_malloc_option, measure_in_child, peak_rss_mib

FEATURES, TARGETS, HORIZON = ["flow", "speed", "occupancy"], ["flow", "speed"], 12
STEPS_PER_DAY = 288  # demo data at 5 minutes


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _measure(
    sensors: int, steps: int, batch: int, hidden: int, repeats: int, default_malloc: bool, device: str
) -> None:
    """Child process: one demo network, one batch of windows, timed train steps and forwards."""
    if not default_malloc:  # as the CLI does (social_xlstm.allocator)
        from social_xlstm.allocator import reuse_freed_memory

        reuse_freed_memory()
    import torch
    from torch.utils.data import default_collate

    from social_xlstm.data.demo import make_demo
    from social_xlstm.data.windows import FeatureScaler, WindowArrays, WindowDataset
    from social_xlstm.graph import build_graph
    from social_xlstm.nn.model import SocialXLSTM, SocialXLSTMConfig
    from social_xlstm.training.module import ForecastModule, adamw

    torch.manual_seed(0)
    dataset = make_demo(sensors=sensors, days=max(1, math.ceil((steps + HORIZON + batch) / STEPS_PER_DAY)))
    scaler = FeatureScaler.fit(dataset.values, dataset.features)
    windows = WindowDataset(
        WindowArrays.from_dataset(dataset, scaler, FEATURES, TARGETS),
        0,
        len(dataset.timestamps),
        input_len=steps,
        horizon=HORIZON,
    )
    batch_data = default_collate([windows[i] for i in range(batch)])
    graph = build_graph(dataset, {"method": "edges"})
    config = SocialXLSTMConfig(
        num_sensors=len(dataset.sensor_ids),
        num_features=len(FEATURES),
        num_targets=len(TARGETS),
        horizon=HORIZON,
        target_feature_index=(0, 1),
        hidden=hidden,
    )
    module = ForecastModule(SocialXLSTM(config), graph, target_weights=[1.0, 1.0]).to(device)
    batch_data = {key: value.to(device) for key, value in batch_data.items()}
    optimizer = adamw(module.parameters(), lr=1e-3)  # as full-precision training builds it (this bench runs fp32)
    del dataset, windows
    on_gpu = device == "cuda"
    rss_before = _rss_mib()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        module.training_loss(batch_data)[0].backward()
        optimizer.step()

    def infer():
        with torch.no_grad():
            module(batch_data)

    timings = {}
    for name, fn in (("train", train_step), ("infer", infer)):
        module.train(name == "train")
        fn()
        samples = []
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            if on_gpu:
                torch.cuda.synchronize()  # the step is done when the GPU is, not when its launches are queued
            samples.append(time.perf_counter() - start)
        timings[name] = statistics.median(samples)
        timings[f"{name}_faults"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / repeats
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None
    print(
        json.dumps(
            {
                "sensors": config.num_sensors,
                "edges": int(graph.edge_index.shape[1]),
                **timings,
                "rss_before_mib": rss_before,
                "peak_mib": peak_rss_mib(),
                "cuda_peak_mib": cuda_peak,
            }
        )
    )


def run_point(sensors: int, steps: int, args) -> dict:
    return measure_in_child(
        __file__,
        "--child",
        str(sensors),
        str(steps),
        "--batch",
        str(args.batch),
        "--hidden",
        str(args.hidden),
        "--repeats",
        str(args.repeats),
        "--device",
        args.device,
        *(["--default-malloc"] if args.default_malloc else []),
    )


def fit(sizes: list[float], values: list[float], unit: str, per: str) -> str:
    """The log-log slope (1 = linear) and the least-squares cost per unit of size."""
    if len(sizes) < 2:
        return "one point: no fit"
    exponent = statistics.linear_regression([math.log(s) for s in sizes], [math.log(v) for v in values]).slope
    per_unit = statistics.linear_regression(sizes, values).slope
    return f"log-log slope {exponent:.2f}, {per_unit:.3g} {unit} per {per}"


def sweep(table: Table, label: str, points: list[tuple[int, int]], size_of, per: str, args) -> list[str]:
    rows = []
    for sensors, steps in points:
        r = run_point(sensors, steps, args)
        r["steps"] = steps
        rows.append(r)
        table.add(
            label,
            r["sensors"],
            r["edges"],
            steps,
            f"{r['train'] * 1000:.1f}",
            f"{r['infer'] * 1000:.1f}",
            f"{r['train_faults']:.0f}",
            f"{r['rss_before_mib']:.0f}",
            f"{r['peak_mib']:.0f}",
            *([f"{r['cuda_peak_mib']:.0f}"] if args.device == "cuda" else []),
        )
    sizes = [size_of(r) for r in rows]
    if args.device == "cuda":
        memory, what = [r["cuda_peak_mib"] for r in rows], "peak CUDA memory"
    else:
        memory, what = (
            [max(r["peak_mib"] - r["rss_before_mib"], 1e-3) for r in rows],
            "peak memory above the pre-step resident set",
        )
    return [
        f"- {label}: train step {fit(sizes, [r['train'] * 1000 for r in rows], 'ms', per)}",
        f"- {label}: inference {fit(sizes, [r['infer'] * 1000 for r in rows], 'ms', per)}",
        f"- {label}: {what} {fit(sizes, memory, 'MiB', per)}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sensors", type=int, nargs="+", default=[100, 1000, 5000, 20000])
    parser.add_argument("--steps", type=int, nargs="+", default=[12, 96, 288, 1008, 2016])
    parser.add_argument("--sensors-for-steps", type=int, default=100, help="network size of the history sweep")
    parser.add_argument("--batch", type=int, default=4, help="windows per step")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    add_malloc_option(parser)
    parser.add_argument("--child", type=int, nargs=2, metavar=("SENSORS", "STEPS"), help=argparse.SUPPRESS)
    add_doc_option(parser)
    args = parser.parse_args()
    if args.child:
        _measure(
            *args.child,
            batch=args.batch,
            hidden=args.hidden,
            repeats=args.repeats,
            default_malloc=args.default_malloc,
            device=args.device,
        )
        return

    malloc = "glibc default malloc" if args.default_malloc else "freed memory reused, as the CLI does"
    on_gpu = args.device == "cuda"
    table = Table(
        "bench_scale" + ("-cuda" if on_gpu else "") + ("-default-malloc" if args.default_malloc else ""),
        f"Scale{' on CUDA' if on_gpu else ''}: one training step and one inference pass "
        f"(batch {args.batch}, width {args.hidden}, {malloc})",
        [
            "sweep",
            "sensors",
            "edges",
            "input steps",
            "train step (ms)",
            "inference (ms)",
            "page faults / train step",
            "RSS before (MiB)",
            "peak RSS (MiB)",
            *(["peak CUDA (MiB)"] if on_gpu else []),
        ],
        right_aligned=8 + on_gpu,
    )
    notes = sweep(table, "sensors", [(n, 12) for n in args.sensors], lambda r: r["sensors"], "sensor", args)
    notes += sweep(
        table, "history", [(args.sensors_for_steps, t) for t in args.steps], lambda r: r["steps"], "input step", args
    )
    print("\n".join(notes))
    if not args.no_doc:
        table.write("\n".join(notes))


if __name__ == "__main__":
    main()
