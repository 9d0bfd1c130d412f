"""The identity inputs: daily harmonics against sin/cos computed directly, and runs trained with
the linear head still loading."""

import math

import torch
from test_model import make_model

from social_xlstm.nn.identity import daily_harmonics, time_inputs


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
