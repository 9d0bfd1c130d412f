"""Accuracy of Social-xLSTM and every baseline over several seeds, under a named protocol.

Each seed is one `social-xlstm train` (model + neural baselines, then the test evaluation) in a
child process, timed; the table gives the mean and spread over seeds of the test MAE / RMSE in
real units, per forecaster, at horizons 3, 6, 12 and their mean (project protocol), or pooled
over the predicted steps (T-GCN protocol), with the training time.

Protocols:
  project  12 in, 12 out, chronological 70/10/20 split (the Los-loop card's protocol)
  tgcn     12 in, 3 out (15 minutes), 80/20 split as T-GCN (Zhao et al. 2019) with 5% of the
           80 held out for early stopping (75/5/20), metrics pooled over the 3 predicted steps

  python scripts/bench_accuracy.py --experiment los_loop --seeds 0 1 2
  python scripts/bench_accuracy.py --experiment los_loop --protocol tgcn --seeds 0 1 2
  python scripts/bench_accuracy.py --experiment los_loop --seeds 0 --label no-mlstm -- model.interaction.kind=none
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchreport import Table, add_doc_option

TIMING_FILE = "bench_minutes.txt"
LOG_FILE = "bench_train.log"
PROTOCOLS = {
    "project": [],
    "tgcn": ["data.horizon=3", "data.split=[0.75,0.05,0.2]"],
}


def add_run_options(parser: argparse.ArgumentParser, label_help: str) -> None:
    """The options that name a set of runs (shared with bench_ablations.py, which reuses them)."""
    parser.add_argument("--experiment", default="los_loop")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="project")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"), help="parent of the run directories")
    parser.add_argument("--label", default="default", help=label_help)
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="trainings at once, the cores split between them (2 on 2 cores gives about 1.5x the "
        "throughput; the minutes are then not speed figures)",
    )


def run_folder(args: argparse.Namespace, label: str, seed: int) -> Path:
    """Where one seed of one labelled configuration is trained: ``<runs>/<experiment>-<protocol>-<label>-seed<N>``."""
    return args.runs / f"{args.experiment}-{args.protocol}-{label}-seed{seed}"


@dataclass(frozen=True)
class Training:
    """One `social-xlstm train` of one seed into its run folder."""

    experiment: str
    protocol: str
    seed: int
    run_dir: Path
    extra: tuple[str, ...] = ()


def train_seed(training: Training, threads: int | None = None) -> tuple[dict, float]:
    """Train one seed and return its test summary and training + evaluation minutes.

    The minutes are stored beside the run (``TIMING_FILE``) once it has trained and evaluated: a
    finished run is read back as it is, not run again (delete its folder to redo it). A run
    stopped before that resumes from its last checkpoint. The child's output goes to
    ``LOG_FILE`` in the run folder, so that runs trained side by side do not interleave."""
    run_dir = training.run_dir
    timing, summary = run_dir / TIMING_FILE, run_dir / "metrics" / "summary.json"
    if timing.exists() and summary.exists():
        return json.loads(summary.read_text()), float(timing.read_text())
    command = [
        sys.executable,
        "-m",
        "social_xlstm.cli",
        "train",
        f"experiment={training.experiment}",
        f"seed={training.seed}",
        f"run_dir={run_dir}",
        *PROTOCOLS[training.protocol],
        *training.extra,
    ]
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / LOG_FILE
    sys.stdout.write(f"training {run_dir}\n")  # one write: trainings side by side print whole lines
    sys.stdout.flush()
    start = time.perf_counter()
    with log.open("w") as out:
        finished = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if finished.returncode:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"{log}: training failed with exit status {finished.returncode}; its last lines:\n{tail}")
    if not timing.exists():
        timing.write_text(f"{(time.perf_counter() - start) / 60:.2f}\n")
    return json.loads(summary.read_text()), float(timing.read_text())


def child_threads(jobs: int) -> int | None:
    """Side by side, each child gets its share of the cores (``OMP_NUM_THREADS``) instead of all
    of them fighting; alone it keeps torch's default (None)."""
    return None if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)


def train_all(trainings: list[Training], jobs: int) -> list[tuple[dict, float]]:
    """Every training's summary and minutes, in order, trained ``jobs`` at a time."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        threads = child_threads(jobs)
        return list(pool.map(lambda training: train_seed(training, threads), trainings))


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def validation_cell(summaries: list[dict], model: str, target: str) -> str:
    """The validation MAE over every horizon, where evaluate scored it (the model and the naive
    forecasters, not the neural baselines)."""
    values = [s.get("validation_mae", {}).get(model, {}).get(target, {}).get("mean") for s in summaries]
    return "-" if None in values else spread(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(parser, "names this configuration (its section and run folders)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    add_doc_option(parser)
    args = parser.parse_args()

    trainings = [
        Training(args.experiment, args.protocol, seed, run_folder(args, args.label, seed), tuple(args.overrides))
        for seed in args.seeds
    ]
    jobs = min(args.jobs, len(trainings))
    summaries, minutes = map(list, zip(*train_all(trainings, jobs)))
    for training, took in zip(trainings, minutes):
        print(f"seed {training.seed}: {took:.1f} min ({training.run_dir})", flush=True)

    models = list(summaries[0]["models"])
    targets = list(summaries[0]["models"][models[0]]["targets"])
    if args.protocol == "tgcn":
        columns, keys = ["MAE (15 min, pooled)", "RMSE (15 min, pooled)"], None
    else:
        keys = list(summaries[0]["models"][models[0]]["per_target"][targets[0]]["report"])
        columns = [f"MAE {k}" for k in keys] + [f"RMSE {k}" for k in keys]
    table = Table(
        f"bench_accuracy-{args.experiment}-{args.protocol}-{args.label}",
        f"Accuracy: {args.experiment}, {args.protocol} protocol, {args.label} ({len(args.seeds)} seeds)",
        ["target", "forecaster", *columns, "validation MAE mean"],
        right_aligned=len(columns) + 1,
    )
    for target in targets:
        for model in models:
            blocks = [s["models"][model]["per_target"][target] for s in summaries]
            if keys is None:
                cells = [spread([b["overall"][m] for b in blocks]) for m in ("mae", "rmse")]
            else:
                cells = [spread([b["report"][k][m] for b in blocks]) for m in ("mae", "rmse") for k in keys]
            table.add(target, model, *cells, validation_cell(summaries, model, target))
    note = (
        f"Test split, real units, mean ± standard deviation over seeds {args.seeds}; the last column is "
        "the validation split's MAE over every horizon, the one to choose configurations by. "
        f"Training + evaluation time per seed (model and neural baselines): {spread(minutes)} min"
        + (
            f" ({jobs} trained at a time, {child_threads(jobs)} thread(s) each: not a speed figure). "
            if jobs > 1
            else ". "
        )
        + f"Extra overrides: {' '.join(args.overrides) or 'none'}."
    )
    print("\n" + note)
    if not args.no_doc:
        table.write(note)


if __name__ == "__main__":
    main()
