"""ForecastMetrics against numpy computed by hand over the concatenated data."""

import json

import numpy as np
import pytest
import torch

from social_xlstm.metrics import ForecastMetrics

H, N, TARGETS, MAPE_MIN = 12, 4, ["flow", "speed"], 1.0
G = len(TARGETS)


def make_batches(seed=0, sizes=(5, 2, 7)):
    rng = np.random.default_rng(seed)
    batches = []
    for b in sizes:
        y_true = rng.normal(0.0, 3.0, (b, H, N, G))
        y_true[rng.random(y_true.shape) < 0.2] = 0.0  # exact zeros and small values: excluded from MAPE
        y_pred = y_true + rng.normal(0.0, 1.0, y_true.shape)
        mask = rng.random(y_true.shape) < 0.7
        mask[:, :, 3, 1] = False  # sensor 3 never has a speed reading
        mask[:, 4] = False  # horizon 5 never observed
        y_true[~mask & (rng.random(y_true.shape) < 0.5)] = np.nan  # masked-off entries may be anything
        y_pred[~mask & (rng.random(y_true.shape) < 0.5)] = np.nan
        batches.append((y_pred, y_true, mask))
    return batches


def by_hand(y_pred, y_true, mask):
    """(mae, rmse, mape %, n) of the selected entries, written the plain way."""
    e = (y_pred - y_true)[mask]
    t = y_true[mask]
    keep = np.abs(t) > MAPE_MIN
    nan = float("nan")
    return (
        np.abs(e).mean() if e.size else nan,
        np.sqrt((e**2).mean()) if e.size else nan,
        100 * np.mean(np.abs(e[keep]) / np.abs(t[keep])) if keep.any() else nan,
        e.size,
    )


def as_dict_values(row):
    return tuple(np.nan if row[k] is None else row[k] for k in ("mae", "rmse", "mape", "n"))


def accumulate(batches, as_tensors=False):
    metrics = ForecastMetrics(H, TARGETS, N, mape_min=MAPE_MIN)
    for y_pred, y_true, mask in batches:
        if as_tensors:
            y_pred, y_true, mask = (
                torch.from_numpy(y_pred).float(),
                torch.from_numpy(y_true).float(),
                torch.from_numpy(mask),
            )
        metrics.update(y_pred, y_true, mask)
    return metrics


def test_summary_matches_numpy_over_concatenated_data():
    batches = make_batches()
    p, t, m = (np.concatenate(parts) for parts in zip(*batches))
    summary = accumulate(batches).compute()
    json.dumps(summary, allow_nan=False)
    np.testing.assert_allclose(as_dict_values(summary["overall"]), by_hand(p, t, m))
    for h in range(H):
        sel = np.zeros_like(m)
        sel[:, h] = True
        np.testing.assert_allclose(as_dict_values(summary["per_horizon"][str(h + 1)]), by_hand(p, t, m & sel))
    for g, name in enumerate(TARGETS):
        block = summary["per_target"][name]
        np.testing.assert_allclose(as_dict_values(block["overall"]), by_hand(p[..., g], t[..., g], m[..., g]))
        per_h = [by_hand(p[:, h, :, g], t[:, h, :, g], m[:, h, :, g]) for h in range(H)]
        for h in range(H):
            np.testing.assert_allclose(as_dict_values(block["per_horizon"][str(h + 1)]), per_h[h])
        for h in (3, 6, 12):
            assert block["report"][f"h{h}"] == block["per_horizon"][str(h)]
        for k, key in enumerate(("mae", "rmse", "mape")):
            # horizon 5 has no data, so the mean is over the other eleven horizons
            assert block["report"]["mean"][key] == pytest.approx(np.nanmean([row[k] for row in per_h]))
    assert summary["per_horizon"]["5"] == {"mae": None, "rmse": None, "mape": None, "n": 0, "n_mape": 0}


def flatten(tree, prefix=""):
    """Nested summary dict -> {"a/b/c": leaf}, so pytest.approx can compare it."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in flatten(sub, f"{prefix}/{key}").items()}
    return {prefix: tree}


def test_batches_accumulate_to_the_same_as_all_at_once():
    batches = make_batches(seed=1, sizes=(1, 9, 3, 4))
    whole = [tuple(np.concatenate(parts) for parts in zip(*batches))]
    in_batches, at_once = flatten(accumulate(batches).compute()), flatten(accumulate(whole).compute())
    assert in_batches.keys() == at_once.keys()
    for key, value in at_once.items():
        assert in_batches[key] == (
            value if value is None or isinstance(value, (str, list)) else pytest.approx(value)
        ), key
    in_float32 = accumulate(batches, as_tensors=True).compute()
    assert in_float32["overall"]["mae"] == pytest.approx(accumulate(whole).compute()["overall"]["mae"], rel=1e-5)


def test_per_sensor_table():
    batches = make_batches(seed=2)
    p, t, m = (np.concatenate(parts) for parts in zip(*batches))
    ids = ["VD-a", "VD-b", "VD-c", "VD-d"]
    table = accumulate(batches).per_sensor(ids)
    assert list(table.columns) == ["sensor_id", "target", "horizon", "mae", "rmse", "mape", "n"]
    assert len(table) == N * G * H
    for row in table.itertuples():
        n, g, h = ids.index(row.sensor_id), TARGETS.index(row.target), row.horizon - 1
        expected = by_hand(p[:, h, n, g], t[:, h, n, g], m[:, h, n, g])
        np.testing.assert_allclose((row.mae, row.rmse, row.mape, row.n), expected)
    assert table.query("sensor_id == 'VD-d' and target == 'speed'")["mae"].isna().all()


def test_tiny_hand_computed_example():
    metrics = ForecastMetrics(1, ["flow"], 2, mape_min=1.0)
    y_true = np.array([2.0, 0.5]).reshape(1, 1, 2, 1)
    y_pred = np.array([3.0, 2.5]).reshape(1, 1, 2, 1)
    metrics.update(y_pred, y_true, np.ones((1, 1, 2, 1), dtype=bool))
    overall = metrics.compute()["overall"]
    # errors 1 and 2; only |2| > 1 counts for MAPE: |1| / 2 = 50 %
    assert overall == {"mae": 1.5, "rmse": pytest.approx(np.sqrt(2.5)), "mape": 50.0, "n": 2, "n_mape": 1}


def test_bad_batches_are_refused():
    metrics = ForecastMetrics(H, TARGETS, N)
    y = np.zeros((2, H, N, G))
    with pytest.raises(ValueError, match="y_pred must be"):
        metrics.update(np.zeros((2, H, N + 1, G)), y, y > 0)
    with pytest.raises(ValueError, match="boolean"):
        metrics.update(y, y, y)
    y_nan = y.copy()
    y_nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        metrics.update(y, y_nan, np.ones_like(y, dtype=bool))
