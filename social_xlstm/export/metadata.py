"""metadata.json of an export bundle: its format constants and the checks a loader runs on it
(json only, so loading a bundle needs neither torch nor this package's training code; what a
run's bundle records is written by ``describe``).

Everything a consumer needs besides onnxruntime is here, as plain JSON: sensor order and
coordinates, features, targets, horizons, interval, input length, time zone, the exact meaning of
every ONNX input and output (names, shapes, dtypes), the streaming state with its initial
values, and, for provenance and display, the scaler statistics and the sensor graph (both are
already applied inside the ONNX graphs) and what the export's check against the run found
(``checked_against_run``). ``format_version`` changes whenever any of this changes
meaning; a loader refuses a version it does not know.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from social_xlstm.errors import InputError
from social_xlstm.json_files import read_json_object, require_fields

FORMAT = "social-xlstm-bundle"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
MODEL_FILE = "model.onnx"
STEP_FILE = "model_step.onnx"
OPSET = 18
STATE_IN, STATE_OUT = "state_in.", "state_out."

# field -> type, checked on load
REQUIRED = {
    "sensors": list,
    "features": list,
    "targets": list,
    "horizons": list,
    "interval": str,
    "input_len": int,
    "timezone": str,
    "model": dict,
    "streaming": dict,
}


def read_metadata(bundle: Path) -> dict:
    """Load and check ``bundle/metadata.json``; any problem is a one-line InputError naming the field."""
    path = bundle / METADATA_FILE
    data = read_json_object(path, "not found: is this a bundle written by `social-xlstm export`?")
    if data.get("format") != FORMAT:
        raise InputError(path, f"field 'format' must be {FORMAT!r}")
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(
            path,
            f"field 'format_version' is {data.get('format_version')!r}; "
            f"this version of social-xlstm reads {FORMAT_VERSION}",
        )
    require_fields(path, data, REQUIRED)
    for i, sensor in enumerate(data["sensors"]):
        if not isinstance(sensor, dict) or not {"sensor_id", "latitude", "longitude"} <= set(sensor):
            raise InputError(path, f"field 'sensors[{i}]' needs sensor_id, latitude and longitude")
    try:
        ZoneInfo(data["timezone"])
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(path, f"field 'timezone' is {data['timezone']!r}, which is no IANA time zone") from None
    if data["horizons"] != list(range(1, len(data["horizons"]) + 1)):
        raise InputError(path, "field 'horizons' must be 1..H")
    for section in ("model", "streaming"):
        for key in ("file", "inputs", "outputs"):
            if key not in data[section]:
                raise InputError(path, f"field '{section}.{key}' is missing")
    return data
