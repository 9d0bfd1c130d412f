"""The model against the forecasters that need no training, on the validation split."""

import json

from conftest import tiny_train_args

from social_xlstm.cli import main
from social_xlstm.evaluation.naive_check import evaluated_split_notes, shortfalls


def test_a_shortfall_is_named_per_target_and_horizon_with_units():
    maes = {
        "social_xlstm": {
            "flow": {"h3": 15.0, "h12": 20.0, "mean": 17.0},
            "speed": {"h3": 2.0, "h12": 3.0, "mean": 2.4},
        },
        "persistence": {"flow": {"h3": 16.0, "h12": 30.0, "mean": 22.0}, "speed": {"h3": 2.5, "h12": 2.9, "mean": 2.6}},
        "historical_average": {
            "flow": {"h3": 19.0, "h12": 19.0, "mean": 19.0},
            "speed": {"h3": 4, "h12": 4, "mean": 4},
        },
    }
    lines = shortfalls(maes, {"flow": "veh/5min"})
    assert len(lines) == 2
    assert "worse than historical_average on flow" in lines[0]
    assert "(h12 20.000 against 19.000, in veh/5min)" in lines[0]
    assert "worse than persistence on speed" in lines[1] and "(h12 3.000 against 2.900)" in lines[1]
    best = {target: {key: 0.1 for key in horizons} for target, horizons in maes["social_xlstm"].items()}
    assert shortfalls({**maes, "social_xlstm": best}, {}) == []
    won_validation = {**maes, "social_xlstm": best}
    notes = evaluated_split_notes(maes, won_validation, {"flow": "veh/5min"}, "test")
    assert notes[0].startswith("on the test split historical_average is better than social_xlstm on flow")
    assert "(h12 20.000 against 19.000, in veh/5min)" in notes[0] and len(notes) == 2
    assert evaluated_split_notes(maes, won_validation, {}, "val") == []  # validation's own warnings
    assert evaluated_split_notes(maes, maes, {}, "test") == []  # the warnings say it already


def test_an_untrained_model_is_flagged_in_the_summary_and_the_table(demo_dir, tmp_path, capsys):
    run_dir = tmp_path / "untrained"
    assert main(tiny_train_args(demo_dir, run_dir, "baselines=[]", "trainer.lr=0")) == 0
    summary = json.loads((run_dir / "metrics/summary.json").read_text())
    validation = summary["validation_mae"]
    assert set(validation) == {"social_xlstm", "persistence", "historical_average"}
    assert summary["warnings"] and all("validation split" in w for w in summary["warnings"])
    shown = capsys.readouterr().out
    assert "warning: social_xlstm is worse than" in shown
    assert summary["notes"] == [] and "note:" not in shown  # lost on validation too: the warnings say it
