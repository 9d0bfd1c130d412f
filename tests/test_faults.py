"""Fault injection: commands that write a dataset, a bundle or a run, killed at random moments.

Whatever the moment and the signal, the output is whole: the previous one byte for byte, or,
when the kill came after the swap, the new one, every file of it. A killed command never exits
0 unless it had finished; SIGTERM and Ctrl-C leave no temporary file or folder; and after a
SIGKILL, which no process can clean up after, the next run of the command does."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import folder_bytes, tiny_train_args

from social_xlstm.data.dataset import read_dataset
from social_xlstm.export.bundle import Bundle

pytestmark = [pytest.mark.xdist_group("faults"), pytest.mark.slow]  # commands run whole and killed, many times
SIGNALS = {"SIGTERM": (signal.SIGTERM, 143), "SIGINT": (signal.SIGINT, 130), "SIGKILL": (signal.SIGKILL, -9)}


def hidden_siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith("."))


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "social_xlstm.cli", *args]


def run_whole(command: list[str]) -> float:
    start = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    return time.monotonic() - start


def default_interrupt() -> None:
    """The child takes Ctrl-C as a terminal's foreground command does. A shell without job control
    starts background jobs (a test run with `&`) with SIGINT ignored, their children inherit it, and
    the CLI, like Python itself, leaves an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_after(command: list[str], delay: float, signum: int, ready=lambda: True) -> tuple[int, str]:
    """Start ``command``, wait until ``ready()`` (or until it ended), then ``delay`` seconds, and signal it."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=default_interrupt
    )
    deadline = time.monotonic() + 120
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # a dataset's write takes tens of milliseconds: a coarser poll can miss it
    time.sleep(delay)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


class TestKilledCommands:
    """Each command is first run whole (its output is the 'previous' one and its duration bounds
    the kill moments), then run again over it and killed at moments drawn from a seeded RNG."""

    @pytest.mark.parametrize("name", list(SIGNALS))
    def test_a_dataset_being_replaced(self, tmp_path, name):
        out = tmp_path / "corridor"
        command = cli("data", "demo", "--sensors", "12", "--days", "14", "--out", str(out))
        self._kill_while_replacing(command, out, name, lambda: read_dataset(out), seed=1)

    @pytest.mark.parametrize("name", list(SIGNALS))
    def test_a_bundle_being_replaced(self, run_dir, tmp_path, name):
        out = tmp_path / "bundle"
        command = cli("export", str(run_dir), "--out", str(out))
        self._kill_while_replacing(command, out, name, lambda: Bundle.load(out), seed=2)

    def _kill_while_replacing(self, command, out, name, load, seed):
        signum, stopped_code = SIGNALS[name]
        took = run_whole(command)
        # once while the new output is being written beside the old (its hidden sibling exists): the
        # moment the swap must survive, which kills at random moments may all miss. A busy machine
        # can run the whole write between two polls: the command then ends 0, and it is tried again.
        for _ in range(5):
            before = folder_bytes(out)
            code, err = kill_after(command, 0.0, signum, ready=lambda: bool(hidden_siblings(out)))
            if code != 0:
                break
        assert code == stopped_code, f"killed while writing: exit {code}: {err}"
        # the old output byte for byte, or (the sibling outlives the swap while the old one is
        # removed) a whole new one
        now = folder_bytes(out)
        assert now == before or now.keys() == before.keys()
        load()
        rng = random.Random(f"{seed}-{name}")
        for delay in sorted(rng.uniform(0.3, took) for _ in range(3)):
            code, err = kill_after(command, delay, signum)
            # -signum: the default action, once the interpreter has begun to end (its work done)
            assert code in (stopped_code, 0, -signum), f"killed after {delay:.2f} s: exit {code}: {err}"
            if code == stopped_code and signum != signal.SIGKILL:
                assert len(err.strip().splitlines()) == 1 and err.startswith("stopped: "), err
            # the previous output byte for byte, or (the kill came after the swap) a whole new one
            now = folder_bytes(out)
            assert now == before or now.keys() == before.keys(), f"killed after {delay:.2f} s"
            load()  # and it is whole whenever the kill came
            if signum != signal.SIGKILL:
                assert hidden_siblings(out) == [], f"killed after {delay:.2f} s"
        run_whole(command)  # the next run removes what a SIGKILL left
        assert hidden_siblings(out) == []
        load()

    def test_a_training_killed_never_reports_success_and_the_same_command_finishes_it(self, demo_dir, tmp_path):
        run = tmp_path / "run"
        command = cli(*tiny_train_args(demo_dir, run, "baselines=[]", epochs=12))
        rng = random.Random(3)
        epochs_done = run / "checkpoints" / "last.ckpt"
        for signum in (signal.SIGTERM, signal.SIGKILL):  # in the epochs after the next one to finish
            started = epochs_done.stat().st_mtime if epochs_done.exists() else 0.0
            progressed = lambda: epochs_done.exists() and epochs_done.stat().st_mtime > started  # noqa: E731
            code, err = kill_after(command, rng.uniform(0.0, 1.0), signum, ready=progressed)
            assert code != 0, err
        run_whole(command)
        assert (run / "metrics" / "summary.json").is_file()
        assert [p.name for p in run.rglob(".*")] == []  # no temporary file in the run
