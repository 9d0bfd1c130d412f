"""The model against the forecasters that need no training, on the validation split."""

import json

from conftest import tiny_train_args

from social_xlstm.cli import main
from social_xlstm.evaluation.naive_check import shortfalls


def test_a_shortfall_is_named_per_target_with_units():
    means = {
        "social_xlstm": {"flow": 20.0, "speed": 3.0},
        "persistence": {"flow": 25.0, "speed": 2.5},
        "historical_average": {"flow": 19.0, "speed": 4.0},
    }
    lines = shortfalls(means, {"flow": "veh/5min"})
    assert len(lines) == 2
    assert "worse than historical_average on flow" in lines[0] and "20.000 veh/5min against 19.000 veh/5min" in lines[0]
    assert "worse than persistence on speed" in lines[1] and "3.000 against 2.500" in lines[1]
    assert shortfalls({**means, "social_xlstm": {"flow": 1.0, "speed": 1.0}}, {}) == []


def test_an_untrained_model_is_flagged_in_the_summary_and_the_table(demo_dir, tmp_path, capsys):
    run_dir = tmp_path / "untrained"
    assert main(tiny_train_args(demo_dir, run_dir, "baselines=[]", "trainer.lr=0")) == 0
    summary = json.loads((run_dir / "metrics/summary.json").read_text())
    validation = summary["validation_mean_mae"]
    assert set(validation) == {"social_xlstm", "persistence", "historical_average"}
    assert summary["warnings"] and all("validation split" in w for w in summary["warnings"])
    assert "warning: social_xlstm is worse than" in capsys.readouterr().out
