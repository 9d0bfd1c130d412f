"""Quality report against tiny hand-built datasets whose gaps and runs are known exactly."""

import json

import numpy as np
import pandas as pd
import pytest

from social_xlstm.data.dataset import Dataset
from social_xlstm.data.quality import duration_text, quality_report, runs, write_report

T = 20
NAN = np.nan


def _tiny() -> Dataset:
    a_flow = np.arange(1.0, T + 1)
    a_flow[[3, 4, 5, 6, 10, 11]] = NAN  # gaps of 4 (from step 3) and 2 steps
    a_speed = np.array([0, 0, 50, 51, 52] + [80] * 13 + [60, 61], dtype=float)  # 13 equal from step 5
    b_flow = np.array([3, 4] + [0] * 14 + [7] + [0, 0, 0], dtype=float)  # 14 zeros from step 2, then 3
    b_speed = np.full(T, NAN)
    values = np.stack([np.stack([a_flow, a_speed], -1), np.stack([b_flow, b_speed], -1)], axis=1)
    return Dataset(
        values=values.astype(np.float32),
        timestamps=pd.date_range("2024-01-01", periods=T, freq="5min", tz="Asia/Taipei"),
        features=["flow", "speed"],
        sensors=pd.DataFrame({"sensor_id": ["A", "B"], "latitude": [25.0, 25.1], "longitude": [121.5, 121.6]}),
        meta={"name": "tiny", "interval": "5min"},
    )


def _reference_runs(column: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """(start, length) of every run of True, by a plain loop."""
    found, start = [], None
    for t, flag in enumerate(list(column) + [False]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            if t - start >= min_length:
                found.append((start, t - start))
            start = None
    return found


def test_runs_match_a_plain_loop():
    rng = np.random.default_rng(0)
    mask = rng.random((200, 30)) < 0.6
    mask[:, 0] = False
    mask[:, 1] = True
    for min_length in (1, 3):
        result = runs(mask, min_length)
        for c in range(mask.shape[1]):
            expected = _reference_runs(mask[:, c], min_length)
            assert result.count[c] == len(expected)
            assert result.steps[c] == sum(length for _, length in expected)
            best = max(expected, key=lambda r: (r[1], -r[0])) if expected else (-1, 0)
            assert (result.longest_start[c], result.longest[c]) == best


def test_per_sensor_numbers_are_exact():
    ds = _tiny()
    report = quality_report(ds, run_steps=12)
    a, b = report["sensors"]["A"], report["sensors"]["B"]
    assert a["flow"]["coverage"] == 0.7
    assert a["flow"]["longest_gap"] == {"steps": 4, "duration": "20min", "start": ds.timestamps[3].isoformat()}
    assert a["flow"]["stuck"]["runs"] == 0 and a["flow"]["zero"]["runs"] == 0
    assert a["speed"]["stuck"] == {"runs": 1, "steps": 13, "longest": 13, "longest_start": ds.timestamps[5].isoformat()}
    assert a["speed"]["zero"]["runs"] == 0  # two zeros are below the run length
    assert a["speed"]["zero_conflicts"] == 2  # speed 0 while flow counted 1 and 2 vehicles
    assert b["flow"]["zero"] == {"runs": 1, "steps": 14, "longest": 14, "longest_start": ds.timestamps[2].isoformat()}
    assert b["flow"]["stuck"]["runs"] == 0  # repeated zeros are zero runs, not stuck values
    assert b["flow"]["longest_gap"] == {"steps": 0, "duration": "0min", "start": None}
    assert b["speed"]["coverage"] == 0.0
    assert b["speed"]["longest_gap"]["steps"] == T
    assert b["speed"]["zero_conflicts"] == 0


def test_summary_features_and_worst_sensors():
    report = quality_report(_tiny(), run_steps=12, top_k=1)
    summary = report["summary"]
    assert (summary["sensors"], summary["steps"], summary["span"], summary["interval"]) == (2, T, "1h40min", "5min")
    assert summary["usable"] == pytest.approx(((0.7 + 0.35) / 2 + (0.3 + 0.0) / 2) / 2)
    flow, speed = report["features"]["flow"], report["features"]["speed"]
    assert flow["coverage"] == 0.85 and speed["coverage"] == 0.5
    assert speed["sensors_without_data"] == 1 and flow["sensors_without_data"] == 0
    assert (flow["longest_gap"], speed["longest_gap"]) == ("20min", "1h40min")
    assert (speed["sensors_with_stuck_runs"], speed["stuck_steps"], flow["zero_steps"]) == (1, 13, 14)
    assert speed["zero_conflicts"] == 2 and flow["zero_conflicts"] == 0
    assert report["worst_sensors"] == [{"sensor_id": "B", "usable": 0.15, "flow": 1.0, "speed": 0.0}]
    json.dumps(report)


def test_run_length_threshold_is_inclusive():
    ds = _tiny()
    assert quality_report(ds, run_steps=13)["sensors"]["A"]["speed"]["stuck"]["runs"] == 1
    assert quality_report(ds, run_steps=14)["sensors"]["A"]["speed"]["stuck"]["runs"] == 0
    assert quality_report(ds, run_steps=3)["sensors"]["B"]["flow"]["zero"]["runs"] == 2


def test_report_written_atomically_and_readable(tmp_path):
    report = quality_report(_tiny())
    path = write_report(report, tmp_path / "out" / "quality.json")
    assert json.loads(path.read_text()) == report
    assert [p.name for p in path.parent.iterdir()] == ["quality.json"]


@pytest.mark.parametrize("span, text", [("45s", "45s"), ("5min", "5min"), ("125min", "2h05min"), ("1D", "1d00h00min")])
def test_duration_text(span, text):
    assert duration_text(pd.Timedelta(span)) == text
