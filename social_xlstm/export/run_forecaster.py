"""A run directory as a forecaster: the same wrapped networks the bundle is exported from,
run by torch, so ``predict`` takes a run or a bundle and gives the same table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .describe import build_metadata
from .forecaster import Forecaster
from .networks import RawUnits, StepNetwork, WindowNetwork
from .runs import load_trained_run


class RunForecaster(Forecaster):
    def __init__(self, path: Path, metadata: dict, window: WindowNetwork, step: StepNetwork):
        super().__init__(path, metadata)
        self.window, self.step_network = window, step

    @classmethod
    def from_run(
        cls, run_dir: str | Path, data: str | Path | None = None, fallback: str | Path | None = None
    ) -> RunForecaster:
        """``data``: the run's dataset directory, if it is no longer where the run's config says;
        ``fallback``: the one to read only then (``runs.run_dataset_dir``)."""
        run = load_trained_run(run_dir, data, fallback)
        units = RawUnits(run.scaler, run.data.features, run.data.targets)
        window, step = WindowNetwork(run.module, units).eval(), StepNetwork(run.module, units, run.input_len).eval()
        return cls(Path(run_dir), build_metadata(run, step.state_names(), step.fresh_state()), window, step)

    @torch.no_grad()
    def run_window(self, values: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        return self.window(torch.from_numpy(values), torch.from_numpy(seconds)).numpy()

    @torch.no_grad()
    def run_step(self, reading, seconds, state):
        forecast, *state = self.step_network(
            torch.from_numpy(reading), torch.from_numpy(seconds), *map(torch.from_numpy, state)
        )
        return forecast.numpy(), [s.numpy() for s in state]
