"""Windows, splits, scaler and time features against hand-computed values; the datamodule end to end."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from social_xlstm.data.dataset import Dataset, write_dataset
from social_xlstm.data.windows import (
    FeatureScaler,
    WindowArrays,
    WindowDataset,
    chronological_splits,
    time_features,
)
from social_xlstm.errors import InputError
from social_xlstm.training.datamodule import TrafficDataModule

FEATURES = ["flow", "speed", "occupancy"]


def make_dataset(steps=40, sensors=3, seed=0, interval="6h") -> Dataset:
    """Known values: flow = 10 t + n, speed = 100 - t - n / 2, occupancy random; a few gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    n = np.arange(sensors)[None, :]
    values = np.stack([10.0 * t + n, 100.0 - t - n / 2, rng.uniform(0, 0.3, (steps, sensors))], axis=-1).astype(
        np.float32
    )
    values[3, 1, 0] = np.nan
    values[5, 0, :] = np.nan
    values[33, 2, 1] = np.nan
    return Dataset(
        values=values,
        timestamps=pd.date_range("2024-01-01 00:00", periods=steps, freq=interval, tz="Asia/Taipei"),
        features=list(FEATURES),
        sensors=pd.DataFrame(
            {
                "sensor_id": [f"VD{i}" for i in range(sensors)],
                "latitude": 25.0 + 0.01 * np.arange(sensors),
                "longitude": np.full(sensors, 121.5),
            }
        ),
        meta={"name": "tiny", "interval": interval},
    )


def test_chronological_splits():
    assert chronological_splits(100) == {"train": (0, 70), "val": (70, 80), "test": (80, 100)}
    assert chronological_splits(10, (0.5, 0.25, 0.25)) == {"train": (0, 5), "val": (5, 8), "test": (8, 10)}
    for bad in ((0.7, 0.3), (0.8, 0.1, 0.2), (1.0, 0.0, 0.0)):
        with pytest.raises(InputError, match="three positive fractions"):
            chronological_splits(100, bad)


def test_time_features_by_hand():
    stamps = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 06:00", "2024-01-03 18:00", "2024-01-07 12:00"]
    ).tz_localize("Asia/Taipei")
    feats = time_features(stamps)
    # Monday 00:00, Monday 06:00, Wednesday 18:00, Sunday 12:00 (local time).
    tod = np.array([0.0, 0.25, 0.75, 0.5])
    dow = (np.array([0, 0, 2, 6]) + tod) / 7
    expected = np.stack(
        [np.sin(2 * np.pi * tod), np.cos(2 * np.pi * tod), np.sin(2 * np.pi * dow), np.cos(2 * np.pi * dow)], axis=1
    )
    np.testing.assert_allclose(feats, expected, atol=1e-6)
    assert feats.dtype == np.float32
    # Local wall-clock time: across the spring DST change one hour later reads 03:00, not 02:00.
    dst = pd.date_range("2024-03-10 01:00", periods=2, freq="1h", tz="America/Los_Angeles")
    np.testing.assert_allclose(time_features(dst)[:, 0], np.sin(2 * np.pi * np.array([1, 3]) / 24), atol=1e-6)


def test_scaler_fits_train_only_and_matches_numpy():
    ds = make_dataset()
    train_end = chronological_splits(40)["train"][1]
    scaler = FeatureScaler.fit(ds.values[:train_end], FEATURES)
    part = ds.values[:train_end].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(scaler.mean, np.nanmean(part, axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.std, np.nanstd(part, axis=0), rtol=1e-12)
    changed = make_dataset()
    changed.values[train_end:] *= 7.0
    dm_a, dm_b = TrafficDataModule(ds, input_len=2, horizon=1), TrafficDataModule(changed, input_len=2, horizon=1)
    dm_a.setup(), dm_b.setup()
    np.testing.assert_array_equal(dm_a.scaler.mean, dm_b.scaler.mean)
    np.testing.assert_array_equal(dm_a.scaler.std, dm_b.scaler.std)
    np.testing.assert_allclose(dm_a.scaler.mean, scaler.mean)


def test_scaler_constant_and_empty_features():
    values = np.zeros((4, 2, 2), np.float32)
    values[..., 0] = 5.0
    values[..., 1] = np.nan
    with pytest.raises(InputError, match="feature 'b' has no reading"):
        FeatureScaler.fit(values, ["a", "b"])
    scaler = FeatureScaler.fit(values[..., :1], ["a"])
    assert scaler.mean.tolist() == [5.0] and scaler.std.tolist() == [1.0]


def test_inverse_scaling_round_trip_and_json_state():
    ds = make_dataset()
    scaler = FeatureScaler.fit(ds.values[:28], FEATURES)
    real = ds.values[:, :, [0, 1]]
    scaled = scaler.transform(real, ["flow", "speed"])
    np.testing.assert_allclose(scaler.inverse_transform(scaled, ["flow", "speed"]), real, rtol=1e-5)
    as_tensor = torch.from_numpy(scaled)
    back = scaler.inverse_transform(as_tensor, ["flow", "speed"])
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), real, rtol=1e-5)
    owned = real.copy()
    assert scaler.transform(owned, ["flow", "speed"], in_place=True) is owned  # no second array of the data's size
    np.testing.assert_array_equal(owned, scaled)
    restored = FeatureScaler.from_dict(scaler.to_dict())
    assert restored.features == FEATURES
    np.testing.assert_array_equal(restored.mean, scaler.mean)
    np.testing.assert_array_equal(restored.std, scaler.std)
    with pytest.raises(InputError, match="one per feature"):
        FeatureScaler.from_dict({"features": ["a"], "mean": [1.0, 2.0], "std": [1.0]})
    with pytest.raises(InputError, match="positive"):
        FeatureScaler.from_dict({"features": ["a"], "mean": [1.0], "std": [0.0]})
    with pytest.raises(InputError, match="not fitted"):
        scaler.inverse_transform(scaled, ["volume", "speed"])


def test_forecasts_of_features_never_negative_in_training_are_floored_at_zero():
    values = np.array([[[0.0, -2.0], [4.0, 6.0]], [[np.nan, 2.0], [2.0, 0.0]]], np.float32)  # [T=2, N=2, F=2]
    scaler = FeatureScaler.fit(values, ["flow", "delta"])
    assert scaler.non_negative.tolist() == [True, False]
    # flow: mean 2, std sqrt(8/3); delta: mean 1.5, std sqrt(8.75). Hand-computed real values:
    # flow -2 -> 2 - 2 * 1.633 = -1.266 -> floored to 0; flow 1 -> 3.633; delta -2 -> 1.5 - 2 * 2.958 = -4.416, kept.
    scaled = np.array([[-2.0, -2.0], [1.0, 1.0], [np.nan, 0.0]])
    expected = np.array([[0.0, 1.5 - 2 * np.sqrt(8.75)], [2 + np.sqrt(8 / 3), 1.5 + np.sqrt(8.75)], [np.nan, 1.5]])
    np.testing.assert_allclose(scaler.forecast_to_real(scaled, ["flow", "delta"]), expected, rtol=1e-12)
    np.testing.assert_allclose(
        scaler.forecast_to_real(scaled[:, ::-1], ["delta", "flow"]), expected[:, ::-1], rtol=1e-12
    )
    assert scaler.inverse_transform(scaled, ["flow", "delta"])[0, 0] < 0  # the truth is never floored
    restored = FeatureScaler.from_dict(scaler.to_dict())
    assert restored.non_negative.tolist() == [True, False]
    older_run = FeatureScaler.from_dict({"features": ["flow"], "mean": [2.0], "std": [1.0]})
    assert older_run.non_negative.tolist() == [False]
    assert older_run.forecast_to_real(np.array([-3.0]), ["flow"]).tolist() == [-1.0]
    with pytest.raises(InputError, match="one per feature"):
        FeatureScaler.from_dict({"features": ["a"], "mean": [1.0], "std": [1.0], "non_negative": [True, False]})


def test_window_items_exact():
    ds = make_dataset()
    scaler = FeatureScaler.fit(ds.values[:28], FEATURES)
    arrays = WindowArrays.from_dataset(ds, scaler, ["flow", "speed", "occupancy"], ["flow", "speed"])
    windows = WindowDataset(arrays, 0, 28, input_len=4, horizon=3, stride=2)
    assert len(windows) == (28 - 7) // 2 + 1
    item = windows[1]  # inputs steps 2..5, targets 6..8
    assert item["origin"].item() == 5 and item["origin"].dtype == torch.int64
    mean, std = scaler.mean, scaler.std
    raw_x = ds.values[2:6].astype(np.float64)
    expected_x = np.where(np.isnan(raw_x), 0.0, (raw_x - mean) / std)
    np.testing.assert_allclose(item["x"].numpy(), expected_x, rtol=1e-6, atol=1e-6)
    assert item["x"].dtype == torch.float32 and item["x"].shape == (4, 3, 3)
    np.testing.assert_array_equal(item["x_mask"].numpy(), ~np.isnan(raw_x))
    assert not item["x_mask"][1, 1, 0] and not item["x_mask"][3, 0].any()  # the gaps at t=3 and t=5
    # Flow of sensor n at step t is 10 t + n, so the targets are known in closed form.
    flow = 10.0 * np.arange(6, 9)[:, None] + np.arange(3)[None, :]
    np.testing.assert_allclose(item["y"][..., 0].numpy(), (flow - mean[0]) / std[0], rtol=1e-6)
    speed = 100.0 - np.arange(6, 9)[:, None] - np.arange(3)[None, :] / 2
    np.testing.assert_allclose(item["y"][..., 1].numpy(), (speed - mean[1]) / std[1], rtol=1e-6)
    assert item["y_mask"].all() and item["y"].shape == (3, 3, 2)
    # Every 6 hours from Monday 00:00: step s is at (s mod 4) quarters of a day.
    expected_time = time_features(ds.timestamps[2:9])
    np.testing.assert_array_equal(item["time"].numpy(), expected_time)
    assert item["time"][0, 0].item() == pytest.approx(math.sin(math.pi), abs=1e-6)  # step 2 = 12:00
    with pytest.raises(IndexError):
        windows[len(windows)]


def test_targets_equal_to_the_inputs_share_one_copy_and_read_the_same():
    ds = make_dataset()
    scaler = FeatureScaler.fit(ds.values[:28], FEATURES)
    shared = WindowArrays.from_dataset(ds, scaler, ["speed"], ["speed"])
    apart = WindowArrays.from_dataset(ds, scaler, ["speed"], ["speed", "flow"])
    assert shared.y is shared.x and shared.y_mask is shared.x_mask
    torch.testing.assert_close(shared.y, apart.y[..., :1])
    torch.testing.assert_close(shared.y_mask, apart.y_mask[..., :1])


def test_missing_targets_are_masked_and_zero():
    ds = make_dataset()
    scaler = FeatureScaler.fit(ds.values[:28], FEATURES)
    arrays = WindowArrays.from_dataset(ds, scaler, FEATURES, ["flow", "speed"])
    item = WindowDataset(arrays, 28, 40, input_len=2, horizon=3)[3]  # targets 33..35
    assert item["y"][0, 2, 1] == 0 and not item["y_mask"][0, 2, 1]
    assert int((~item["y_mask"]).sum()) == 1


@pytest.mark.parametrize("input_len,horizon,stride", [(12, 12, 1), (3, 2, 4), (5, 1, 3), (1, 1, 1)])
def test_no_window_crosses_a_split_boundary(input_len, horizon, stride):
    ds = make_dataset(steps=97)
    scaler = FeatureScaler.fit(ds.values, FEATURES)
    arrays = WindowArrays.from_dataset(ds, scaler, FEATURES, ["flow"])
    for begin, end in chronological_splits(97).values():
        windows = WindowDataset(arrays, begin, end, input_len=input_len, horizon=horizon, stride=stride)
        starts = [windows.window_start(i) for i in range(len(windows))]
        assert all(begin <= s and s + input_len + horizon <= end for s in starts)
        # ...and it is the largest such set: the next start would cross.
        next_start = starts[-1] + stride if starts else begin
        assert next_start + input_len + horizon > end
        for i in range(len(windows)):
            item = windows[i]
            assert item["origin"].item() == starts[i] + input_len - 1
            # Flow is 10 t + n (sensor 2 has no gap), so the values tell which time steps an item holds.
            flow = scaler.inverse_transform(item["y"][:, 2, 0].double(), ["flow"])
            expected = 10.0 * np.arange(starts[i] + input_len, starts[i] + input_len + horizon) + 2
            np.testing.assert_allclose(flow.numpy(), expected, atol=1e-3)


def test_datamodule_batches_from_dataset_directory(tmp_path):
    write_dataset(make_dataset(steps=60, interval="5min"), tmp_path / "tiny")
    dm = TrafficDataModule(
        tmp_path / "tiny",
        features=["flow", "speed", "occupancy"],
        targets=["flow", "speed"],
        input_len=4,
        horizon=3,
        batch_size=5,
        split=(0.6, 0.2, 0.2),
    )
    dm.setup("fit")
    assert dm.split_bounds == {"train": (0, 36), "val": (36, 48), "test": (48, 60)}
    assert dm.sensor_ids == ["VD0", "VD1", "VD2"] and dm.scaler.features == ["flow", "speed", "occupancy"]
    assert [len(dm.windows[s]) for s in ("train", "val", "test")] == [30, 6, 6]
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (5, 4, 3, 3) and batch["x"].dtype == torch.float32
    assert batch["x_mask"].shape == (5, 4, 3, 3) and batch["x_mask"].dtype == torch.bool
    assert batch["time"].shape == (5, 7, 4)
    assert batch["y"].shape == (5, 3, 3, 2) and batch["y_mask"].shape == (5, 3, 3, 2)
    assert batch["origin"].shape == (5,) and batch["origin"].dtype == torch.int64
    graph = dm.build_graph({"method": "coordinates", "k": 2})
    assert graph.sensor_ids == dm.sensor_ids and graph.num_edges == 6 and graph.meta["config"]["k"] == 2
    test_batch = next(iter(dm.test_dataloader()))
    assert test_batch["origin"].tolist() == [51, 52, 53, 54, 55]


def test_datamodule_rejects_bad_configs(tmp_path):
    ds = make_dataset(steps=40)
    with pytest.raises(InputError, match="the val split has 4 time steps"):
        TrafficDataModule(ds, input_len=4, horizon=3).setup()
    with pytest.raises(InputError, match="feature 'volume'"):
        TrafficDataModule(ds, targets=["volume"], input_len=1, horizon=1).setup()
    with pytest.raises(InputError, match="dataset directory not found"):
        TrafficDataModule(tmp_path / "absent").setup()
