"""The JSON files commands read hold one object; anything else is one line naming the file and the
field (a data.json holding [] said "missing field list indices must be integers or slices, not
str"; a meta.json interval of 'abc' was a traceback)."""

import json
import shutil

import pytest
from conftest import folder_bytes

from social_xlstm.cli import main
from social_xlstm.errors import InputError
from social_xlstm.json_files import read_json_object, require_fields


@pytest.mark.parametrize(
    ("text", "found"),
    [("[]", "an array"), ('"x"', "a string"), ("3", "a whole number"), ("null", "null"), ("true", "true or false")],
)
def test_anything_but_an_object_is_named(tmp_path, text, found):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"x.json: expected a JSON object {{\.\.\.}}, found {found}$"):
        read_json_object(path, "not there")


def test_a_missing_file_says_what_to_check_and_bad_bytes_are_not_json(tmp_path):
    with pytest.raises(InputError, match="nope.json: is this a run"):
        read_json_object(tmp_path / "nope.json", "is this a run")
    (tmp_path / "bad.json").write_bytes(b"\xff{")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        read_json_object(tmp_path / "bad.json", "")
    (tmp_path / "ok.json").write_text('{"a": [1]}')
    assert read_json_object(tmp_path / "ok.json", "") == {"a": [1]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "field 'n' is missing; expected a whole number"),
        ({"n": True}, "field 'n' is true or false; expected a whole number"),
        ({"n": 2.5}, "field 'n' is a number; expected a whole number"),
        ({"n": 2, "names": {}}, "field 'names' is an object; expected an array"),
    ],
)
def test_fields_of_the_wrong_kind_are_named(tmp_path, data, message):
    with pytest.raises(InputError, match=message):
        require_fields(tmp_path / "x.json", data, {"n": int, "names": list})
    require_fields(tmp_path / "x.json", {"n": 2, "names": []}, {"n": int, "names": list})


def _one_line(capsys, said):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and said in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("content", "said"),
    [("[]", "data.json: expected a JSON object {...}, found an array"), ('{"sensor_ids": 1}', "field 'sensor_ids'")],
)
def test_a_run_with_a_broken_data_json_is_one_line(run_dir, demo_dir, tmp_path, capsys, content, said):
    broken = shutil.copytree(run_dir, tmp_path / "run")
    (broken / "data.json").write_text(content)
    out = tmp_path / "forecast.csv"
    assert main(["predict", str(broken), "--data", str(demo_dir), "--out", str(out)]) == 2
    _one_line(capsys, said)
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda meta: [], "meta.json: expected a JSON object {...}, found an array"),
        (lambda meta: {**meta, "interval": "abc"}, "field 'interval' is 'abc'; expected a time step"),
        (lambda meta: {**meta, "interval": "-5min"}, "field 'interval' is '-5min'"),
        (lambda meta: {**meta, "features": "speed"}, "field 'features' is a string; expected an array"),
    ],
)
def test_a_dataset_with_a_broken_meta_json_is_one_line(demo_dir, tmp_path, capsys, change, said):
    broken = shutil.copytree(demo_dir, tmp_path / "data")
    meta_path = broken / "meta.json"
    meta_path.write_text(json.dumps(change(json.loads(meta_path.read_text()))))
    before = folder_bytes(broken)
    assert main(["data", "inspect", str(broken)]) == 2
    _one_line(capsys, said)
    assert folder_bytes(broken) == before


def test_a_bundle_whose_metadata_is_not_an_object_is_one_line(bundle_dir, demo_dir, tmp_path, capsys):
    broken = shutil.copytree(bundle_dir, tmp_path / "bundle")
    (broken / "metadata.json").write_text("[1, 2]")
    assert main(["predict", str(broken), "--data", str(demo_dir), "--out", str(tmp_path / "f.csv")]) == 2
    _one_line(capsys, "metadata.json: expected a JSON object {...}, found an array")
