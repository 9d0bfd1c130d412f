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
import shlex
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
SUMMARY = Path("metrics") / "summary.json"
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


@dataclass(frozen=True)
class Timing:
    """One run's training + evaluation minutes and how it trained: ``at_a_time`` runs side by side
    at ``threads`` threads each ("all": torch's default). Both None for runs timed before the
    conditions were kept with the minutes."""

    minutes: float
    at_a_time: int | None = None
    threads: str | None = None


def write_timing(run_dir: Path, timing: Timing) -> None:
    (run_dir / TIMING_FILE).write_text(f"{timing.minutes:.2f} at_a_time={timing.at_a_time} threads={timing.threads}\n")


def read_timing(run_dir: Path) -> Timing | None:
    """The run's timing, or None when it was never timed (a file of minutes alone is an older run)."""
    path = run_dir / TIMING_FILE
    if not path.exists():
        return None
    minutes, *conditions = path.read_text().split()
    fields = dict(item.split("=", 1) for item in conditions)
    at_a_time = fields.get("at_a_time")
    return Timing(float(minutes), int(at_a_time) if at_a_time else None, fields.get("threads"))


def is_finished(run_dir: Path) -> bool:
    """Trained, evaluated and timed: read back, not run again."""
    return read_timing(run_dir) is not None and (run_dir / SUMMARY).exists()


def timing_conditions(timings: list[Timing]) -> str:
    """How the runs were timed, as they recorded it: only runs trained one at a time give speed figures."""
    conditions = {(t.at_a_time, t.threads) for t in timings}
    if len(conditions) > 1 or (None, None) in conditions:
        return "trained under different or unrecorded conditions: not a speed figure"
    at_a_time, threads = conditions.pop()
    if at_a_time == 1:
        return f"one run at a time by this script, {threads} threads"
    return f"{at_a_time} trained at a time, {threads} thread(s) each: not a speed figure"


def timing_note(timings: list[Timing]) -> str:
    """The minutes over seeds and the conditions they were measured under."""
    return f"{spread([t.minutes for t in timings])} min ({timing_conditions(timings)})"


def train_seed(training: Training, at_a_time: int = 1) -> tuple[dict, Timing]:
    """Train one seed and return its test summary and timing.

    The timing is stored beside the run (``TIMING_FILE``) once it has trained and evaluated: a
    finished run is read back as it is, not run again (delete its folder to redo it), with the
    conditions it trained under. A run stopped before that resumes from its last checkpoint. The
    child's output goes to ``LOG_FILE`` in the run folder, so that runs trained side by side do
    not interleave."""
    run_dir = training.run_dir
    summary = run_dir / SUMMARY
    if is_finished(run_dir):
        return json.loads(summary.read_text()), read_timing(run_dir)
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
    threads = child_threads(at_a_time)
    run_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.write(f"training {run_dir}\n")  # one write: trainings side by side print whole lines
    sys.stdout.flush()
    start = time.perf_counter()
    run_logged(command, run_dir / LOG_FILE, threads)
    threads_used = str(threads) if threads is not None else os.environ.get("OMP_NUM_THREADS", "all")
    timing = Timing((time.perf_counter() - start) / 60, at_a_time, threads_used)
    write_timing(run_dir, timing)
    return json.loads(summary.read_text()), timing


def run_logged(command: list[str], log: Path, threads: int | None) -> None:
    """Run a training child with its output appended to ``log`` (children side by side do not
    interleave, and a run resumed in a later session keeps the earlier lines), at ``threads``
    threads (None: torch's default); a failure ends the script with the log's last lines."""
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with log.open("a") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n")
        out.flush()
        finished = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if finished.returncode:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"{log}: training failed with exit status {finished.returncode}; its last lines:\n{tail}")


def child_threads(jobs: int) -> int | None:
    """Side by side, each child gets its share of the cores (``OMP_NUM_THREADS``) instead of all
    of them fighting; alone it keeps torch's default (None)."""
    return None if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)


def train_all(trainings: list[Training], jobs: int) -> list[tuple[dict, Timing]]:
    """Every training's summary and timing, in order, trained ``jobs`` at a time (finished runs
    are only read back, so they do not count among the runs side by side)."""
    at_a_time = max(1, min(jobs, sum(not is_finished(t.run_dir) for t in trainings)))
    with ThreadPoolExecutor(max_workers=at_a_time) as pool:
        return list(pool.map(lambda training: train_seed(training, at_a_time), trainings))


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
    summaries, timings = map(list, zip(*train_all(trainings, args.jobs)))
    for training, timing in zip(trainings, timings):
        print(f"seed {training.seed}: {timing.minutes:.1f} min ({training.run_dir})", flush=True)

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
        f"Training + evaluation time per seed (model and neural baselines): {timing_note(timings)}. "
        f"Extra overrides: {' '.join(args.overrides) or 'none'}."
    )
    print("\n" + note)
    if not args.no_doc:
        table.write(note)


if __name__ == "__main__":
    main()
