"""Test-wide set-up: Triton runs under its CPU interpreter when no GPU is present."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pathlib
import socket

import pytest

# Where the kernel and layer tests put their tensors: a GPU's kernels need device pointers.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def folder_bytes(root: pathlib.Path, *, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (but those named in ``skip``): what "left byte
    for byte as it was" compares."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip
    }


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The real public data beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


def free_port() -> int:
    """A TCP port nothing on this machine listens on now (a server or a DDP rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tiny_train_args(data_dir, run_dir, *extra: str, epochs: int = 1) -> list[str]:
    """`social-xlstm train` arguments for a model that trains in seconds on a tiny demo network."""
    return [
        "train",
        f"data.path={data_dir}",
        f"run_dir={run_dir}",
        f"trainer.max_epochs={epochs}",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2",
        "data.batch_size=8",
        "model.hidden=16",
        "model.encoder.heads=2",
        "model.interaction.heads=2",
        *extra,
    ]


def make_demo_dir(parent: pathlib.Path, sensors: int = 8, seed: int = 11) -> pathlib.Path:
    from social_xlstm.data.dataset import write_dataset
    from social_xlstm.data.demo import make_demo

    path = parent / "demo"
    write_dataset(make_demo(sensors=sensors, days=3, seed=seed), path)
    return path


def write_without_sensors(demo_dir: pathlib.Path, out: pathlib.Path, dropped: tuple[int, ...]) -> list[str]:
    """Write the dataset of ``demo_dir`` to ``out`` without the sensors at ``dropped`` (their
    edges too), as after detectors were removed since training; return their ids."""
    from social_xlstm.data.dataset import Dataset, read_dataset, write_dataset

    ds = read_dataset(demo_dir)
    keep = [n for n in range(len(ds.sensor_ids)) if n not in dropped]
    gone = [ds.sensor_ids[n] for n in dropped]
    edges = ds.edges[~ds.edges.src.isin(gone) & ~ds.edges.dst.isin(gone)]
    write_dataset(
        Dataset(
            ds.values[:, keep], ds.timestamps, ds.features, ds.sensors.iloc[keep].reset_index(drop=True), edges, ds.meta
        ),
        out,
    )
    return gone


def rewritten(demo_dir: pathlib.Path, out: pathlib.Path, change) -> str:
    """A copy of the demo dataset with ``change(dataset) -> dataset`` applied."""
    from social_xlstm.data.dataset import read_dataset, write_dataset

    write_dataset(change(read_dataset(demo_dir)), out)
    return str(out)


def renamed_sensors(ds):
    """The same readings under ids the model has never seen."""
    from social_xlstm.data.dataset import Dataset

    sensors = ds.sensors.assign(sensor_id="x" + ds.sensors["sensor_id"])
    return Dataset(ds.values, ds.timestamps, ds.features, sensors, None, ds.meta)


def every_second_step(ds):
    """The same sensors every 10 minutes (the demo's 5 halved)."""
    from social_xlstm.data.dataset import Dataset

    meta = {**ds.meta, "interval": "10min"}
    return Dataset(ds.values[::2], ds.timestamps[::2], ds.features, ds.sensors, ds.edges, meta)


class Artifacts:
    """Demo data, runs and bundles made once per test session (per xdist worker) and shared by
    every module that asks for the same one: a module that overrides ``demo_dir`` or ``run_dir``
    gets runs and bundles of its own. Tests read them and never write into them."""

    def __init__(self, root: pathlib.Path):
        self.root, self.made = root, {}

    def _once(self, key: tuple, make) -> pathlib.Path:
        if key not in self.made:
            self.made[key] = make(self.root / f"{key[0]}-{len(self.made)}")
        return self.made[key]

    def demo(self) -> pathlib.Path:
        return self._once(("demo",), lambda where: make_demo_dir(where))

    def run(self, demo_dir: pathlib.Path) -> pathlib.Path:
        from social_xlstm.cli import main

        def train(where):
            assert main(tiny_train_args(demo_dir, where / "small", "baselines=[]")) == 0
            return where / "small"

        return self._once(("run", demo_dir), train)

    def bundle(self, run_dir: pathlib.Path) -> pathlib.Path:
        from social_xlstm.cli import main

        def export(where):
            assert main(["export", str(run_dir), "--out", str(where / "bundle")]) == 0
            return where / "bundle"

        return self._once(("bundle", run_dir), export)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    return Artifacts(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="module")
def demo_dir(artifacts) -> pathlib.Path:
    """A 3-day demo network of 8 VDs (a module may override this fixture)."""
    return artifacts.demo()


@pytest.fixture(scope="module")
def run_dir(demo_dir, artifacts) -> pathlib.Path:
    """A 1-epoch run on ``demo_dir``, without neural baselines."""
    return artifacts.run(demo_dir)


@pytest.fixture(scope="module")
def bundle_dir(run_dir, artifacts) -> pathlib.Path:
    """The export bundle of ``run_dir``."""
    return artifacts.bundle(run_dir)
