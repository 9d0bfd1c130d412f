"""The identity inputs: daily harmonics against sin/cos computed directly, the weekend flag
against the calendar, and runs trained with the linear head still loading."""

import math

import pandas as pd
import pytest
import torch
from test_model import H, make_inputs, make_model, ring_graph

from social_xlstm.nn.identity import daily_harmonics, time_inputs, weekend_flag
from social_xlstm.timefeatures import time_features


def calendar_time(start: str, periods: int, freq: str = "5min", tz: str | None = None):
    stamps = pd.date_range(start, periods=periods, freq=freq, tz=tz)
    return stamps, torch.tensor(time_features(stamps))


def test_harmonics_equal_sin_and_cos_of_multiples_of_the_time_of_day():
    angle = torch.linspace(0, 2 * math.pi, 97, dtype=torch.float64)
    time = torch.stack([angle.sin(), angle.cos(), torch.zeros_like(angle), torch.ones_like(angle)], dim=-1)
    harmonics = daily_harmonics(time, 12)
    k = torch.arange(1, 13, dtype=torch.float64)
    expected = torch.cat([(angle[:, None] * k).sin(), (angle[:, None] * k).cos()], dim=-1)
    torch.testing.assert_close(harmonics, expected, rtol=0, atol=1e-12)


def test_time_inputs_keep_the_day_of_week_only_when_asked():
    time = torch.tensor([[0.5, 0.8, -0.3, 0.9]])
    assert time_inputs(time, 1, day_of_week=True).tolist() == time.tolist()
    assert time_inputs(time, 3, day_of_week=False).shape == (1, 6)


@pytest.mark.parametrize("tz", [None, "America/Los_Angeles"])  # float32 features, a DST change inside
def test_the_weekend_flag_is_saturday_and_sunday_at_every_5_minute_step(tz):
    stamps, time = calendar_time("2012-03-01", 3 * 7 * 288, tz=tz)  # three weeks from a Thursday
    expected = torch.tensor(stamps.day_of_week >= 5, dtype=time.dtype)
    torch.testing.assert_close(weekend_flag(time)[:, 0], expected, rtol=0, atol=0)
    inputs = time_inputs(time, 2, day_of_week=False, weekend=True)
    assert inputs.shape == (len(stamps), 5) and torch.equal(inputs[:, -1], expected)


def test_with_the_weekend_flag_only_a_working_day_reads_like_any_other():
    """day_of_week_inputs=false with weekend_input=true: a Tuesday and a Wednesday at the same
    time of day give the same forecast (the week held one of each); a Saturday does not."""
    x, mask, _ = make_inputs(batch=1)
    graph = ring_graph()
    steps = x.shape[1] + H
    forecasts = {}
    for day in ("2012-03-06", "2012-03-07", "2012-03-10"):  # Tuesday, Wednesday, Saturday
        _, time = calendar_time(f"{day} 07:00", steps)
        model = make_model(day_of_week_inputs=False, weekend_input=True)
        forecasts[day] = model(x, mask, time[None].double(), graph)
    torch.testing.assert_close(forecasts["2012-03-06"], forecasts["2012-03-07"], rtol=0, atol=0)
    assert not torch.allclose(forecasts["2012-03-06"], forecasts["2012-03-10"])


def test_a_run_saved_with_the_linear_head_loads_into_the_new_head():
    model = make_model()  # the linear head: what such runs were trained with
    state = model.state_dict()
    legacy = {
        key.replace("head.norm.", "out_norm.").replace("head.out.", "head."): value for key, value in state.items()
    }
    assert "out_norm.weight" in legacy and "head.weight" in legacy
    fresh = make_model()
    with torch.no_grad():  # so that only the loaded weights can make it equal
        for parameter in fresh.parameters():
            parameter.zero_()
    fresh.load_state_dict(legacy)
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(value, state[key])
