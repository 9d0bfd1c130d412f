"""Persistence and HistoricalAverage on tiny arrays with hand-computed expectations."""

import io
import math

import numpy as np
import pandas as pd
import pytest
import torch

from social_xlstm.errors import InputError
from social_xlstm.nn.baselines import (
    HistoricalAverage,
    Persistence,
    calendar_of_time_features,
    calendar_of_timestamps,
)

nan = math.nan


def time_features(timestamps: pd.DatetimeIndex, running_week: bool = False) -> torch.Tensor:
    """The batch's [T, 4] sin/cos of time of day and day of week, as float32."""
    day_fraction = (timestamps.hour * 3600 + timestamps.minute * 60 + timestamps.second).to_numpy() / 86400
    week = timestamps.day_of_week.to_numpy() + (day_fraction if running_week else 0.0)
    angles = [2 * np.pi * day_fraction, 2 * np.pi * week / 7]
    return torch.tensor(
        np.stack([np.sin(angles[0]), np.cos(angles[0]), np.sin(angles[1]), np.cos(angles[1])], -1), dtype=torch.float32
    )


def batch_at(x, x_mask, timestamps):
    """A batch of one window: inputs x / x_mask [T_in, N, F]; timestamps cover T_in + H steps."""
    return {"x": x[None], "x_mask": x_mask[None], "time": time_features(timestamps)[None]}


# ----- Persistence -----


def test_persistence_last_value_then_window_then_training_mean():
    # training targets [T=3, N=3, G=2]; target 0 is x channel 2, target 1 is x channel 0
    train = np.array(
        [
            [[1.0, 10.0], [4.0, nan], [nan, 100.0]],
            [[3.0, 20.0], [nan, nan], [nan, nan]],
            [[nan, 30.0], [8.0, nan], [nan, 200.0]],
        ]
    )
    baseline = Persistence.fit(train, target_channels=[2, 0])
    # sensor means; sensor 2's target 0 was never observed -> target 0's mean (1+3+4+8)/4 = 4,
    # sensor 1's target 1 was never observed -> target 1's mean (10+20+30+100+200)/5 = 72
    torch.testing.assert_close(baseline.fallback, torch.tensor([[2.0, 20.0], [6.0, 72.0], [4.0, 150.0]]))

    x = torch.zeros(3, 3, 3)  # [T_in, N, F]; missing entries hold 0 as in the batch contract
    mask = torch.zeros(3, 3, 3, dtype=torch.bool)
    x[:, 0, 2], mask[:, 0, 2] = torch.tensor([5.0, 6.0, 7.0]), True  # sensor 0, target 0: last step observed
    x[:, 0, 0], mask[:2, 0, 0] = torch.tensor([50.0, 60.0, 0.0]), True  # sensor 0, target 1: last step missing
    x[0, 1, 2], mask[0, 1, 2] = 9.0, True  # sensor 1, target 0: only the first step
    # sensor 1 target 1 and sensor 2 (both targets): nothing in the window -> training means
    stamps = pd.date_range("2024-03-04 08:00", periods=5, freq="5min", tz="Asia/Taipei")
    forecast = baseline(batch_at(x, mask, stamps))
    expected = torch.tensor([[7.0, 60.0], [9.0, 72.0], [4.0, 150.0]])
    assert forecast.shape == (1, 2, 3, 2)
    torch.testing.assert_close(forecast, expected.expand(1, 2, 3, 2))


def test_persistence_checkpoints_with_weights_only():
    baseline = Persistence.fit(np.arange(12.0).reshape(3, 2, 2), target_channels=[1, 0])
    buffer = io.BytesIO()
    torch.save(baseline.state_dict(), buffer)
    restored = Persistence([0, 0], torch.empty(2, 2))
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    x, mask = torch.zeros(4, 2, 2), torch.zeros(4, 2, 2, dtype=torch.bool)
    stamps = pd.date_range("2024-03-04", periods=7, freq="5min", tz="UTC")
    torch.testing.assert_close(restored(batch_at(x, mask, stamps)), baseline(batch_at(x, mask, stamps)))
    assert restored.target_channels.tolist() == [1, 0]


# ----- calendar decoding -----


@pytest.mark.parametrize("tz", ["Asia/Taipei", "America/Los_Angeles"])
@pytest.mark.parametrize("running_week", [False, True])
@pytest.mark.parametrize("days", ["week", "weekend"])
def test_time_features_decode_to_the_timestamps_calendar(tz, running_week, days):
    stamps = pd.date_range("2024-03-01", "2024-03-16", freq="5min", tz=tz)  # spans the US DST switch
    expected_day, expected_slot = calendar_of_timestamps(stamps, pd.Timedelta("5min"), days)
    day, slot = calendar_of_time_features(time_features(stamps, running_week), 288, days)
    assert torch.equal(slot, expected_slot)
    assert torch.equal(day, expected_day)
    assert expected_slot.max() == 287 and expected_day.max() == (6 if days == "week" else 1)


# ----- HistoricalAverage -----


def test_historical_average_by_day_of_week():
    stamps = pd.date_range("2024-01-01", periods=8, freq="D", tz="Europe/Berlin")  # Monday .. next Monday
    baseline = HistoricalAverage.fit(np.arange(1.0, 9.0).reshape(8, 1, 1), stamps, pd.Timedelta("1D"))
    assert baseline.table.shape == (7, 1, 1, 1)
    future = pd.date_range("2024-05-05", periods=4, freq="D", tz="Europe/Berlin")  # Sun, Mon, Tue, Wed
    forecast = baseline(batch_at(torch.zeros(1, 1, 1), torch.ones(1, 1, 1, dtype=torch.bool), future))
    torch.testing.assert_close(forecast.flatten(), torch.tensor([(1 + 8) / 2, 2.0, 3.0]))


def weekend_example():
    """Two slots a day (00:00, 12:00), Friday .. Monday, three sensors, one target."""
    stamps = pd.date_range("2024-01-05", periods=8, freq="12h", tz="Asia/Taipei")
    #          Fri00 Fri12 Sat00 Sat12 Sun00 Sun12 Mon00 Mon12
    sensor0 = [1.0, 2.0, 3.0, nan, 5.0, nan, 7.0, 8.0]
    sensor1 = [10.0, nan, 30.0, nan, nan, nan, 20.0, nan]
    sensor2 = [nan] * 8
    return np.array([sensor0, sensor1, sensor2]).T[..., None], stamps


def test_historical_average_fallbacks():
    train, stamps = weekend_example()
    baseline = HistoricalAverage.fit(train, stamps, pd.Timedelta("12h"), days="weekend")
    global_mean = (1 + 2 + 3 + 5 + 7 + 8 + 10 + 30 + 20) / 9
    expected = torch.tensor(
        [  # [day kind, slot, sensor]
            # weekday: sensor 0 slot means; sensor 1 slot 1 -> sensor mean 20; sensor 2 -> global mean
            [[4.0, 15.0, global_mean], [5.0, 20.0, global_mean]],
            # weekend: sensor 0 slot 1 never seen on a weekend -> slot 1 over all days (2+8)/2
            [[4.0, 30.0, global_mean], [5.0, 20.0, global_mean]],
        ]
    )
    torch.testing.assert_close(baseline.table[..., 0], expected)

    # origin at Saturday 00:00 a month later: inputs Fri 12:00, Sat 00:00; forecasts Sat 12:00, Sun 00:00, Sun 12:00
    window = pd.date_range("2024-02-02 12:00", periods=5, freq="12h", tz="Asia/Taipei")  # Fri12 .. Sun12
    forecast = baseline(batch_at(torch.zeros(2, 3, 1), torch.ones(2, 3, 1, dtype=torch.bool), window))
    torch.testing.assert_close(forecast[0, :, :, 0], torch.stack([expected[1, 1], expected[1, 0], expected[1, 1]]))


def test_historical_average_checkpoints_with_weights_only():
    train, stamps = weekend_example()
    baseline = HistoricalAverage.fit(train, stamps, pd.Timedelta("12h"), days="weekend")
    buffer = io.BytesIO()
    torch.save(baseline.state_dict(), buffer)
    restored = HistoricalAverage(torch.empty(2, 2, 3, 1), days="weekend")
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert torch.equal(restored.table, baseline.table)


def test_bad_training_data_is_refused():
    train, stamps = weekend_example()
    with pytest.raises(InputError, match="divides a day"):
        HistoricalAverage.fit(train, stamps, pd.Timedelta("7h"))
    with pytest.raises(InputError, match="no observed value"):
        Persistence.fit(np.full((4, 2, 1), nan), target_channels=[0])
    with pytest.raises(ValueError, match="timestamps"):
        HistoricalAverage.fit(train, stamps[:-1], pd.Timedelta("12h"))


def test_fitting_a_few_steps_at_a_time_gives_the_same_statistics(monkeypatch):
    rng = np.random.default_rng(0)
    train = rng.normal(50, 10, size=(300, 4, 2))
    train[rng.random(train.shape) < 0.2] = nan
    train[:, 3, 1] = nan  # one sensor never observes target 1: falls back to the target's mean
    stamps = pd.date_range("2024-03-04", periods=300, freq="1h", tz="Asia/Taipei")
    monkeypatch.setattr("social_xlstm.nn.baselines.STEPS_PER_CHUNK", 1000)
    whole = HistoricalAverage.fit(train, stamps, pd.Timedelta("1h")), Persistence.fit(train, target_channels=[0, 1])
    monkeypatch.setattr("social_xlstm.nn.baselines.STEPS_PER_CHUNK", 7)
    chunked = HistoricalAverage.fit(train, stamps, pd.Timedelta("1h")), Persistence.fit(train, target_channels=[0, 1])
    torch.testing.assert_close(chunked[0].table, whole[0].table)
    torch.testing.assert_close(chunked[1].fallback, whole[1].fallback)
    # the fallback is the plain NaN-aware mean, computed here by numpy
    observed = ~np.isnan(train)
    sums, counts = np.where(observed, train, 0.0).sum(0), observed.sum(0)
    expected = np.where(counts > 0, sums / np.maximum(counts, 1), sums[:, 1].sum() / counts[:, 1].sum())
    torch.testing.assert_close(chunked[1].fallback, torch.tensor(expected, dtype=torch.float32))
