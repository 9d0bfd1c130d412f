"""README.md's commands, run as written after its two set-up commands: what a newcomer types
must work. Training commands get small epoch limits appended, and no compiling (the only
change: a minute of compiling per network would dominate); everything else
is the README's own text, run by bash from a fresh working folder with the environment's
`bin/` on PATH, as `source .venv/bin/activate` puts it there."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = "trainer.max_epochs=1 trainer.limit_train_batches=2 trainer.limit_val_batches=2 trainer.compile=false"


def bash_blocks(text: str) -> list[list[str]]:
    """The commands of each ```bash block, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [[line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()] for block in blocks]


def block_starting_with(first: str) -> list[str]:
    return next(block for block in bash_blocks((ROOT / "README.md").read_text()) if block[0].startswith(first))


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    command = command.split("  #", 1)[0]
    if re.match(r"social-xlstm train\b", command):
        command = f"{command} {SMALL}"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def make_demo_command() -> str:
    """What `make demo` runs after its set-up, from the Makefile."""
    recipe = re.search(r"^demo:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), flags=re.M).group(1)
    return recipe.replace("$(VENV)/bin/", "")


@pytest.mark.slow
def test_the_demo_block_runs_as_written_after_make_demo(tmp_path):
    assert shutil.which("social-xlstm", path=str(Path(sys.executable).parent)), (
        "the command is in the environment's bin/"
    )
    done = run(make_demo_command(), tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    block = block_starting_with("source .venv/bin/activate")
    for command in block[1:]:  # the first line puts .venv/bin on PATH, which run() does
        done = run(command, tmp_path)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert (tmp_path / "runs" / "demo-bundle" / "model.onnx").is_file()
    assert "unit" in (tmp_path / "runs" / "demo-forecast.csv").read_text().splitlines()[0]


@pytest.mark.slow
@pytest.mark.realdata
def test_the_los_loop_block_runs_as_written(shared_data, tmp_path):
    (tmp_path / "shared").symlink_to(shared_data.parent)
    work = tmp_path / "work"
    work.mkdir()
    for command in block_starting_with("social-xlstm data import tgcn-csv ../shared/data/los-loop"):
        done = run(command, work)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert (work / "runs" / "los-loop" / "metrics" / "summary.json").is_file()


@pytest.mark.slow
def test_the_own_data_block_runs_as_written(tmp_path):
    """Files with the README's headers (two days of six detectors at +08:00), then its commands."""
    import numpy as np
    import pandas as pd

    readme = (ROOT / "README.md").read_text()
    readings_header, sensors_header = "timestamp,sensor_id,flow,speed,occupancy", "sensor_id,latitude,longitude,road"
    assert readings_header in readme and sensors_header in readme
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-03-04T00:00+08:00", periods=576, freq="5min")
    ids = [f"VD-{i:03d}" for i in range(1, 7)]
    rows = [
        f"{t.isoformat()},{s},{rng.integers(10, 60)},{rng.uniform(40, 100):.1f},{rng.uniform(2, 20):.1f}"
        for t in times
        for s in ids
    ]
    (tmp_path / "readings.csv").write_text("\n".join([readings_header, *rows]) + "\n")
    located = [f"{s},{25.04 + 0.01 * i:.4f},{121.53 + 0.005 * i:.4f},N1" for i, s in enumerate(ids)]
    (tmp_path / "sensors.csv").write_text("\n".join([sensors_header, *located]) + "\n")
    for command in block_starting_with("social-xlstm data import long-csv readings.csv"):
        done = run(command, tmp_path)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert (tmp_path / "runs" / "mine" / "metrics" / "summary.json").is_file()
