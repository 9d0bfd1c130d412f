"""Lightning wiring of the data layer: a dataset directory -> train/val/test window loaders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning
import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from social_xlstm.data.dataset import Dataset, read_dataset
from social_xlstm.data.windows import SPLITS, FeatureScaler, WindowArrays, WindowDataset, chronological_splits
from social_xlstm.errors import InputError
from social_xlstm.graph import GraphConfig, SensorGraph, build_graph

TRAFFIC_TARGETS = ("flow", "speed")


class SideBySideShuffles(Sampler):
    """Batches of ``shuffles`` x ``batch_size`` indices: at step s, the s-th batch of each of
    ``shuffles`` independent random orders of the ``size`` windows, one after the other. Every
    block of ``batch_size`` covers each window once per epoch, as a shuffled loader would."""

    def __init__(self, size: int, batch_size: int, shuffles: int, drop_last: bool):
        super().__init__()
        self.size, self.batch_size, self.shuffles, self.drop_last = size, batch_size, shuffles, drop_last

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def __iter__(self):
        orders = [torch.randperm(self.size).tolist() for _ in range(self.shuffles)]
        for step in range(len(self)):
            batch = slice(step * self.batch_size, (step + 1) * self.batch_size)
            yield [index for order in orders for index in order[batch]]


class TrafficDataModule(lightning.LightningDataModule):
    """Windows of a dataset, split chronologically, scaled with statistics of the training split.

    ``features`` are the model inputs and ``targets`` the forecast features (by default every
    feature of the dataset, and of those its flow and speed, or every feature when it has
    neither). After ``setup`` it exposes the ``dataset`` (sensors and edges, the graph's inputs;
    ``build_graph(config)`` builds it), ``scaler``, ``sensor_ids``, ``split_bounds`` and the
    three ``WindowDataset`` s in ``windows``.
    """

    def __init__(
        self,
        data: str | Path | Dataset,
        *,
        features: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        input_len: int = 12,
        horizon: int = 12,
        stride: int = 1,
        split: Sequence[float] = (0.7, 0.1, 0.2),
        batch_size: int = 32,
        num_workers: int = 0,
        shuffles: int = 1,
    ):
        super().__init__()
        self.source = data
        self.features = None if features is None else list(features)
        self.targets = None if targets is None else list(targets)
        self.input_len, self.horizon, self.stride = input_len, horizon, stride
        self.split = tuple(split)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffles = shuffles  # training batches: one per independent shuffle, side by side (ensembles)
        self.dataset: Dataset | None = None
        self.scaler: FeatureScaler | None = None
        self.split_bounds: dict[str, tuple[int, int]] = {}
        self.windows: dict[str, WindowDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Read the dataset, fit the scaler on the training split, index the windows (once)."""
        if self.windows:
            return
        dataset = self.source if isinstance(self.source, Dataset) else read_dataset(self.source)
        where = dataset.meta.get("name", str(self.source))
        self.features = self._known(dataset, self.features, "features", where)
        if self.targets is None:  # the traffic quantities a dashboard shows, when the data has them
            self.targets = [f for f in self.features if f in TRAFFIC_TARGETS] or list(self.features)
        self.targets = self._known(dataset, self.targets, "targets", where)
        self.split_bounds = chronological_splits(len(dataset.timestamps), self.split)
        fitted = list(dict.fromkeys(self.features + self.targets))
        train_begin, train_end = self.split_bounds["train"]
        train_values = dataset.values[train_begin:train_end][:, :, [dataset.feature_index(f) for f in fitted]]
        self.scaler = FeatureScaler.fit(train_values, fitted, where=f"{where} (training split)")
        arrays = WindowArrays.from_dataset(dataset, self.scaler, self.features, self.targets)
        windows = {
            name: WindowDataset(
                arrays, *self.split_bounds[name], input_len=self.input_len, horizon=self.horizon, stride=self.stride
            )
            for name in SPLITS
        }
        for name, split_windows in windows.items():
            if len(split_windows) == 0:
                begin, end = self.split_bounds[name]
                raise InputError(
                    where,
                    f"the {name} split has {end - begin} time steps, fewer than input_len + horizon = "
                    f"{self.input_len + self.horizon}; use a longer dataset or other split fractions",
                )
        self.dataset, self.windows = dataset, windows

    @staticmethod
    def _known(dataset: Dataset, names: list[str] | None, option: str, where: str) -> list[str]:
        if names is None:
            return list(dataset.features)
        if not names:
            raise InputError("data config", f"'{option}' must name at least one feature")
        unknown = [n for n in names if n not in dataset.features]
        if unknown:
            raise InputError(
                where,
                f"{option} names feature '{unknown[0]}' which the dataset lacks; it has {', '.join(dataset.features)}",
            )
        return list(names)

    @property
    def sensor_ids(self) -> list[str]:
        return self._ready().sensor_ids

    @property
    def sensors(self) -> pd.DataFrame:
        return self._ready().sensors

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        return self._ready().timestamps

    def build_graph(self, config: Mapping | GraphConfig) -> SensorGraph:
        """The sensor graph of this dataset, built as ``config`` (the data config's ``graph:`` block) says."""
        return build_graph(self._ready(), config)

    def _ready(self) -> Dataset:
        if self.dataset is None:
            raise RuntimeError("TrafficDataModule.setup() has not run yet")
        return self.dataset

    def dataloader(self, split: str, shuffle: bool = False, drop_last: bool = False) -> DataLoader:
        """Windows of one split ("train", "val" or "test") in batches."""
        self._ready()
        return self._loader(self.windows[split], batch_size=self.batch_size, shuffle=shuffle, drop_last=drop_last)

    def _loader(self, windows: WindowDataset, **batching) -> DataLoader:
        """A loader of ``windows`` batched as asked, with the configured workers."""
        return DataLoader(windows, num_workers=self.num_workers, persistent_workers=self.num_workers > 0, **batching)

    def train_dataloader(self) -> DataLoader:
        """Shuffled; the ragged last batch is dropped (a different shuffle each epoch, so no
        window is lost for good) when a full one exists, so a compiled step sees one shape.
        With ``shuffles`` = K > 1 each step holds K batches one after the other, the k-th from
        the k-th of K independent shuffles: an ensemble's member k reads the k-th, so every member
        sees the windows in its own order, as it would trained alone."""
        windows = self.windows["train"]
        drop_last = len(windows) >= self.batch_size
        if self.shuffles == 1:
            return self.dataloader("train", shuffle=True, drop_last=drop_last)
        return self._loader(
            windows, batch_sampler=SideBySideShuffles(len(windows), self.batch_size, self.shuffles, drop_last)
        )

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test", shuffle=False)
