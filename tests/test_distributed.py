"""Training on many processes (Lightning DDP over gloo, on this CPU): one run directory written
once, by rank 0, equal in form to a single-process run, each forecast beside its own truth;
checkpoints that resume; and two "nodes" started by hand with torchrun-style variables."""

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from conftest import free_port, tiny_train_args

from social_xlstm.cli import main

DDP = ["trainer.accelerator=cpu", "trainer.strategy=ddp"]


def cli(*args, env=None):
    command = [sys.executable, "-m", "social_xlstm.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_two_processes_write_one_complete_run_directory(demo_dir, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main(tiny_train_args(demo_dir, single, epochs=2)) == 0
    done = cli(*tiny_train_args(demo_dir, ddp, *DDP, "trainer.devices=2", epochs=2), env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        done.stdout.count("results of the test split:") == 1 and done.stdout.count("MAE / RMSE on the test split") == 2
    )
    keys = ["origin", "sensor_id", "horizon", "target"]
    once, reference = (pd.read_parquet(d / "predictions.parquet") for d in (ddp, single))
    assert not once.duplicated(keys).any()
    assert (
        once[keys]
        .sort_values(keys)
        .reset_index(drop=True)
        .equals(reference[keys].sort_values(keys).reset_index(drop=True))
    )
    # the truth does not depend on the training: gathered from two ranks, each row keeps its own
    both = once.merge(reference, on=keys, suffixes=("_ddp", "_single"))
    assert len(both) == len(reference) and (both.y_true_ddp == both.y_true_single).all()
    # rank 0 kept the checkpoints, and a second command resumes them on two processes
    last = torch.load(ddp / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1
    resumed = cli(*tiny_train_args(demo_dir, ddp, *DDP, "trainer.devices=2", epochs=3), env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(ddp / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


@pytest.mark.slow
def test_two_nodes_started_by_hand_train_one_run(demo_dir, tmp_path):
    """What a user does on two machines: the same command on each, told the rendezvous
    (MASTER_ADDR, MASTER_PORT) and its node rank (NODE_RANK); here both on this machine."""
    run_dir = tmp_path / "nodes"
    args = tiny_train_args(demo_dir, run_dir, *DDP, "trainer.devices=1", "trainer.num_nodes=2", "baselines=[]")
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "social_xlstm.cli", *args]
    nodes = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **rendezvous, "NODE_RANK": str(rank)},
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=600) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err[-2000:] for _, err in outputs]
    assert "results of the test split:" in outputs[0][0] and "results of the test split:" not in outputs[1][0]
    assert (run_dir / "metrics" / "summary.json").is_file()
