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
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchreport import Table, add_doc_option

TIMING_FILE = "bench_minutes.txt"
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


def run_folder(args: argparse.Namespace, label: str, seed: int) -> Path:
    """Where one seed of one labelled configuration is trained: ``<runs>/<experiment>-<protocol>-<label>-seed<N>``."""
    return args.runs / f"{args.experiment}-{args.protocol}-{label}-seed{seed}"


def train_seed(experiment: str, protocol: str, seed: int, run_dir: Path, extra: list[str]) -> tuple[dict, float]:
    """Train one seed and return its test summary and training + evaluation minutes.

    The minutes are stored beside the run (``TIMING_FILE``) once it has trained and evaluated: a
    finished run is read back as it is, not run again (delete its folder to redo it). A run
    stopped before that resumes from its last checkpoint."""
    timing, summary = run_dir / TIMING_FILE, run_dir / "metrics" / "summary.json"
    if timing.exists() and summary.exists():
        return json.loads(summary.read_text()), float(timing.read_text())
    command = [sys.executable, "-m", "social_xlstm.cli", "train", f"experiment={experiment}", f"seed={seed}",
               f"run_dir={run_dir}", *PROTOCOLS[protocol], *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    if not timing.exists():
        timing.write_text(f"{(time.perf_counter() - start) / 60:.2f}\n")
    return json.loads(summary.read_text()), float(timing.read_text())


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(parser, "names this configuration (its section and run folders)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    add_doc_option(parser)
    args = parser.parse_args()

    summaries, minutes = [], []
    for seed in args.seeds:
        run_dir = run_folder(args, args.label, seed)
        summary, took = train_seed(args.experiment, args.protocol, seed, run_dir, args.overrides)
        summaries.append(summary)
        minutes.append(took)
        print(f"seed {seed}: {took:.1f} min ({run_dir})", flush=True)

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
        ["target", "forecaster", *columns], right_aligned=len(columns),
    )
    for target in targets:
        for model in models:
            blocks = [s["models"][model]["per_target"][target] for s in summaries]
            if keys is None:
                cells = [spread([b["overall"][m] for b in blocks]) for m in ("mae", "rmse")]
            else:
                cells = [spread([b["report"][k][m] for b in blocks]) for m in ("mae", "rmse") for k in keys]
            table.add(target, model, *cells)
    note = (f"Test split, real units, mean ± standard deviation over seeds {args.seeds}. "
            f"Training + evaluation time per seed (model and neural baselines): {spread(minutes)} min. "
            f"Extra overrides: {' '.join(args.overrides) or 'none'}.")
    print("\n" + note)
    if not args.no_doc:
        table.write(note)


if __name__ == "__main__":
    main()
