"""The JSON files a command reads (a run's data.json and scaler.json, a dataset's meta.json, a
bundle's metadata.json): each holds one object, and anything else is a one-line ``InputError``
naming the file and the field, never a ``KeyError`` about a list. json only, so a bundle's loader
stays free of torch."""

from __future__ import annotations

import json
from pathlib import Path

from social_xlstm.errors import InputError

_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "a whole number", float: "a number"}


def _json_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def read_json_object(path: Path, missing: str) -> dict:
    """The object in ``path``; ``missing`` says what the user should check when it is not there."""
    if not path.is_file():
        raise InputError(path, missing)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"expected a JSON object {{...}}, found {_json_name(data)}")
    return data


def require_fields(path: Path, data: dict, kinds: dict[str, type]) -> None:
    """Each field of ``kinds`` is there and of its type (a number is not true or false)."""
    for key, kind in kinds.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            found = "missing" if key not in data else f"{_json_name(value)}"
            raise InputError(path, f"field '{key}' is {found}; expected {_JSON_NAMES.get(kind, kind.__name__)}")
