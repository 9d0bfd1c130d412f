"""The dataset directory writer: chunked readings, streamed datasets, and checks that refuse
bad chunks without leaving anything behind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import folder_bytes

from social_xlstm.data.dataset import Dataset, StreamedDataset, read_dataset, write_dataset
from social_xlstm.errors import InputError


def small_dataset(steps: int = 10, sensors: int = 3) -> Dataset:
    rng = np.random.default_rng(0)
    values = rng.normal(50, 10, size=(steps, sensors, 2)).astype(np.float32)
    values[2, 1, 0] = np.nan
    values[5, :, 1] = np.nan
    return Dataset(
        values=values,
        timestamps=pd.date_range("2025-03-09 01:00", periods=steps, freq="15min", tz="America/Los_Angeles"),
        features=["flow", "speed"],
        sensors=pd.DataFrame({"sensor_id": [f"S{i}" for i in range(sensors)], "latitude": 25.0, "longitude": 121.5}),
        meta={"interval": "15min", "name": "small"},
    )


def streamed(ds: Dataset, cuts: list[int]) -> StreamedDataset:
    """The same readings handed out in the time slices between ``cuts``."""

    def chunks():
        bounds = [0, *cuts, len(ds.timestamps)]
        for lo, hi in zip(bounds, bounds[1:]):
            yield ds.timestamps[lo:hi], ds.values[lo:hi].copy()

    return StreamedDataset(features=ds.features, sensors=ds.sensors, chunks=chunks, meta=dict(ds.meta))


def assert_same(a: Dataset, b: Dataset) -> None:
    np.testing.assert_array_equal(a.values, b.values)
    assert list(a.timestamps) == list(b.timestamps)
    assert a.sensor_ids == b.sensor_ids and a.features == b.features


def test_readings_are_written_in_row_groups_and_read_back_whole(tmp_path, monkeypatch):
    ds = small_dataset()  # crosses the DST change of 2025-03-09 in Los Angeles
    monkeypatch.setattr("social_xlstm.data.readings_table.ROWS_PER_GROUP", 7)  # 2 steps of 3 sensors per group
    meta = write_dataset(ds, tmp_path / "d")
    assert pq.ParquetFile(tmp_path / "d" / "readings.parquet").num_row_groups == 5
    assert_same(read_dataset(tmp_path / "d"), ds)
    assert meta["counts"]["readings_present"] == {"flow": 29, "speed": 27}
    assert meta["start"] == "2025-03-09T01:00:00-08:00" and meta["end"] == "2025-03-09T04:15:00-07:00"
    assert json.loads((tmp_path / "d" / "meta.json").read_text())["counts"] == meta["counts"]


def test_a_streamed_dataset_writes_what_its_loaded_form_holds(tmp_path):
    ds = small_dataset()
    stream = streamed(ds, [1, 4, 4, 9])  # uneven slices, one of them empty
    assert_same(stream.load(), ds)
    write_dataset(stream, tmp_path / "streamed")
    write_dataset(ds, tmp_path / "whole")
    assert_same(read_dataset(tmp_path / "streamed"), ds)
    for name in ("readings.parquet", "sensors.parquet"):
        assert pd.read_parquet(tmp_path / "streamed" / name).equals(pd.read_parquet(tmp_path / "whole" / name))


@pytest.mark.parametrize(
    "break_it, problem",
    [
        (lambda stamps, values: (stamps[[0, 1, 3]], values[:3]), "not a regular, increasing time grid"),
        (lambda stamps, values: (stamps, values[:, :2]), "shape does not match"),
        (lambda stamps, values: (stamps.tz_localize(None), values), "time-zone aware"),
        (lambda stamps, values: (stamps, np.full_like(values, np.nan)), None),
    ],
)
def test_a_bad_later_chunk_is_refused_and_nothing_is_left(tmp_path, break_it, problem):
    ds = small_dataset()
    good = streamed(ds, [4])

    def chunks():
        first, second = good.chunks()
        yield first
        yield break_it(*second)

    bad = StreamedDataset(features=ds.features, sensors=ds.sensors, chunks=chunks, meta=dict(ds.meta))
    if problem is None:  # the second chunk is all missing, which is allowed: the first holds readings
        write_dataset(bad, tmp_path / "out")
        assert np.isnan(read_dataset(tmp_path / "out").values[4:]).all()
        return
    with pytest.raises(InputError, match=problem):
        write_dataset(bad, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_all_missing_stream_is_an_empty_result(tmp_path):
    ds = small_dataset()
    ds.values[:] = np.nan
    with pytest.raises(InputError, match="empty result: every reading is missing"):
        write_dataset(streamed(ds, [3, 6]), tmp_path / "out")
    empty = StreamedDataset(
        features=ds.features,
        sensors=ds.sensors,
        meta=dict(ds.meta),
        chunks=lambda: iter([(ds.timestamps[:0], ds.values[:0])]),
    )
    with pytest.raises(InputError, match="empty result: 0 time steps x 3 sensors x 2 features"):
        write_dataset(empty, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_replacing_a_dataset_keeps_the_old_one_until_the_new_one_is_whole(tmp_path):
    write_dataset(small_dataset(), tmp_path / "d")
    ds = small_dataset()

    def chunks():
        yield ds.timestamps[:4], ds.values[:4]
        raise InputError("feed", "broken half way")

    with pytest.raises(InputError, match="broken half way"):
        write_dataset(
            StreamedDataset(features=ds.features, sensors=ds.sensors, chunks=chunks, meta=dict(ds.meta)), tmp_path / "d"
        )
    assert_same(read_dataset(tmp_path / "d"), ds)
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def rewrite_readings(folder, change) -> None:
    """Replace readings.parquet with ``change(table)``, in small row groups, as another tool might."""
    table = pq.read_table(folder / "readings.parquet")
    pq.write_table(change(table), folder / "readings.parquet", row_group_size=4)


def test_readings_in_any_row_order_and_many_row_groups_read_back(tmp_path):
    ds = small_dataset()
    write_dataset(ds, tmp_path / "d")
    order = np.random.default_rng(1).permutation(30)
    rewrite_readings(tmp_path / "d", lambda table: table.take(order))
    assert_same(read_dataset(tmp_path / "d"), ds)


def test_integer_sensor_ids_and_null_readings(tmp_path):
    ds = small_dataset()
    ds.sensors["sensor_id"] = ["101", "102", "103"]
    write_dataset(ds, tmp_path / "d")

    def as_ints(table):
        ids = table.column("sensor_id").cast(pa.int64())
        return table.set_column(table.schema.get_field_index("sensor_id"), "sensor_id", ids)

    rewrite_readings(tmp_path / "d", as_ints)
    back = read_dataset(tmp_path / "d")
    assert_same(back, ds)
    assert np.isnan(back.values[2, 1, 0]) and np.isnan(back.values[5, :, 1]).all()


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda t: t.drop_columns(["speed"]), "readings.parquet: missing column 'speed'"),
        (lambda t: t.set_column(0, "timestamp", t.column(0).cast(pa.timestamp("ns"))), "must be time-zone aware"),
        (
            lambda t: t.set_column(1, "sensor_id", pa.array(["S0", "S1", "S9"] * 10)),
            "sensor_id 'S9' is not in sensors.parquet",
        ),
        (lambda t: t.set_column(1, "sensor_id", pa.array(["S0", None, "S2"] * 10)), "'sensor_id' has a null"),
        (
            lambda t: t.set_column(
                0, "timestamp", pa.array([None] + t.column(0).to_pylist()[1:], type=t.column(0).type)
            ),
            "'timestamp' has a null",
        ),
    ],
)
def test_bad_readings_are_one_clear_error(tmp_path, change, problem):
    write_dataset(small_dataset(), tmp_path / "d")
    rewrite_readings(tmp_path / "d", change)
    with pytest.raises(InputError, match=problem):
        read_dataset(tmp_path / "d")


@pytest.mark.parametrize(
    "prepare, problem",
    [
        (
            lambda d: [(d / "meta.json").write_text("{}"), (d / "precious.txt").write_text("keep")],
            "holds 'precious.txt'",
        ),
        (lambda d: (d / "meta.json").write_text("{}"), "not a complete dataset directory"),
        (lambda d: (d / "meta.json").write_text("not json"), "no readable meta.json"),
    ],
)
def test_only_a_dataset_directory_of_ours_is_replaced(tmp_path, prepare, problem):
    """A stray meta.json used to be enough, and every other file went with the directory."""
    out = tmp_path / "d"
    out.mkdir()
    prepare(out)
    before = folder_bytes(out)
    with pytest.raises(InputError, match=problem):
        write_dataset(small_dataset(), out)
    assert folder_bytes(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary folder left


def test_an_inspected_dataset_is_replaced_with_its_quality_report(tmp_path):
    write_dataset(small_dataset(), tmp_path / "d")
    (tmp_path / "d" / "quality.json").write_text("{}")  # what `data inspect` leaves beside the data
    write_dataset(small_dataset(steps=12), tmp_path / "d")
    assert len(read_dataset(tmp_path / "d").timestamps) == 12


def test_the_current_directory_is_refused_as_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="is the current directory"):
        write_dataset(small_dataset(), ".")
    assert list(tmp_path.iterdir()) == []
    write_dataset(small_dataset(), "sub")  # a relative --out below it is fine
    assert_same(read_dataset(tmp_path / "sub"), small_dataset())


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """What a read-only --out or a full disk does to an import: one line, exit 2, no folder left."""
    import errno

    import social_xlstm.files
    from social_xlstm.cli import main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ds"))

    monkeypatch.setattr(social_xlstm.files.tempfile, "mkdtemp", full)
    assert main(["data", "demo", "--out", str(tmp_path / "ds"), "--sensors", "4", "--days", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("No space left on device; nothing was written") and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_pyarrow_writes_names_the_output(tmp_path, monkeypatch, capsys):
    """pyarrow's error names no file; the line the user reads names --out (it said "output")."""
    import errno

    import pyarrow.parquet

    from social_xlstm.cli import main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pyarrow.parquet, "write_table", full)
    out = tmp_path / "ds"
    assert main(["data", "demo", "--out", str(out), "--sensors", "4", "--days", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out}: Error writing bytes") and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("under", ["afile/ds", "afile/x/ds"])
def test_an_out_under_a_file_is_one_line_naming_the_file(tmp_path, capsys, under):
    """These ended in a traceback (FileExistsError, NotADirectoryError)."""
    from social_xlstm.cli import main

    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / under
    assert main(["data", "demo", "--out", str(out), "--sensors", "4", "--days", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out}: {tmp_path / 'afile'} is not a folder; expected a folder there" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_a_long_out_name_is_written_and_one_past_the_file_system_is_one_line(tmp_path, capsys):
    """250 bytes is a legal name, but its temporary sibling's was not (a traceback); 300 is not."""
    from social_xlstm.cli import main

    legal = tmp_path / ("d" * 250)
    assert main(["data", "demo", "--out", str(legal), "--sensors", "4", "--days", "2"]) == 0
    assert read_dataset(legal).values.shape[1] == 4
    capsys.readouterr()
    assert main(["data", "demo", "--out", str(tmp_path / ("e" * 300)), "--sensors", "4", "--days", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith("File name too long; nothing was written"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == [legal.name]
