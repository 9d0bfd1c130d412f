"""A bundle checks itself before it is written: both ONNX graphs against the run's torch
networks, on real readings of the run's dataset.

torch's ONNX exporter can write an op with numerics other than eager torch's: it wrote
``logsigmoid`` as Log(Sigmoid(x)), and the Los-loop bundle forecast NaN for some windows that
torch forecast well (``social_xlstm_kernels.gates``). Tests guard the cases we know; this
check guards each user's own model and data, at the cost of a few forecasts per export.
"""

from __future__ import annotations

import numpy as np

from social_xlstm.data.dataset import Dataset
from social_xlstm.errors import SelfCheckError

from .forecaster import Forecaster
from .predict import latest_window

# Windowed forecasts compared, ending at steps drawn at random (seeded) over the whole dataset:
# evenly spaced ends fell at one time of day on Los-loop (a day is 288 steps), where the NaN
# windows of the Log(Sigmoid) export were rare; 16 random ends catch them (39% of windows).
WINDOWS = 16
# Real units. Float32 graphs differ from torch by ~1e-4 in another order of operations (see
# tests/test_export.py); a wrong op differs by far more, or is NaN.
RTOL, ATOL = 1e-3, 1e-2


def _check(trained: Forecaster, expected: np.ndarray, got: np.ndarray, what: str) -> float:
    """The largest difference between ``got`` and ``expected``, or ``SelfCheckError`` beyond tolerance."""
    wrong = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
    if wrong.any():
        h, n, g = (int(i) for i in np.argwhere(wrong)[0])
        raise SelfCheckError(
            f"export: {what} forecasts {trained.targets[g]} {got[h, n, g]:.6g} at horizon {trained.horizons[h]} "
            f"of sensor {trained.sensor_ids[n]!r} where the trained model forecasts {expected[h, n, g]:.6g} "
            f"({int(wrong.sum())} of {wrong.size} values differ beyond rtol {RTOL}, atol {ATOL}); "
            f"no bundle was written. This is a bug in the export: please report it"
        )
    return float(np.nanmax(np.abs(got - expected), initial=0.0))


def verify_bundle(trained: Forecaster, bundle: Forecaster, dataset: Dataset) -> dict:
    """Raise ``SelfCheckError`` unless ``bundle`` forecasts what ``trained`` does: ``WINDOWS``
    windows of ``dataset``, and a stream over its last 3 x input_len readings (both staggered
    states restart in it). Returns what was checked, for metadata.json."""
    stamps, length = dataset.timestamps, trained.input_len
    ends = np.arange(length - 1, len(stamps))
    ends = np.sort(np.random.default_rng(0).choice(ends, size=min(WINDOWS, len(ends)), replace=False))
    largest = 0.0
    for end in ends:
        values, window = latest_window(dataset, trained, stamps[end])
        largest = max(
            largest,
            _check(
                trained,
                trained.forecast(values, window),
                bundle.forecast(values, window),
                f"model.onnx (window ending {window[-1]})",
            ),
        )
    ours, theirs, streamed = trained.stream(), bundle.stream(), 0
    for end in [len(stamps) - 1 - k * length for k in reversed(range(min(3, len(stamps) // length)))]:
        values, window = latest_window(dataset, trained, stamps[end])
        for reading, stamp in zip(values, window):
            largest = max(
                largest,
                _check(
                    trained,
                    ours.update(reading, stamp),
                    theirs.update(reading, stamp),
                    f"model_step.onnx (reading at {stamp})",
                ),
            )
            streamed += 1
    return {
        "windows": len(ends),
        "streamed_readings": streamed,
        "largest_difference": largest,
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "units": "the targets' real units",
    }
