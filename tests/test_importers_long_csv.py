"""long-csv: a user's own table of one row per time and sensor, read in blocks, checked against
the grid it was written from, against wide-csv on the same readings, and on its refusals."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from conftest import folder_bytes

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset
from social_xlstm.data.importers import csv_blocks
from social_xlstm.data.importers.long_csv import import_long_csv, parse_units
from social_xlstm.data.importers.wide_csv import import_wide_csv
from social_xlstm.errors import InputError

SENSORS = ["VD-01", "007", "N3"]
FEATURES = ["flow", "speed", "occupancy"]


def grid_and_rows(steps: int = 40, seed: int = 0, *, zone: str = "Asia/Taipei"):
    """A grid of readings with blank cells, and its long rows in shuffled order, some left out
    (missing readings) and one whole step absent (a step the file never mentions)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-03-01T00:00", periods=steps, freq="5min", tz=zone)
    values = rng.uniform(0, 100, (steps, len(SENSORS), len(FEATURES))).round(2).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    rows = []
    for t, stamp in enumerate(times):
        for s, sensor in enumerate(SENSORS):
            if t == 7 or (t, s) in {(3, 1), (20, 0)}:
                values[t, s] = np.nan
                continue
            rows.append({"timestamp": stamp.isoformat(), "sensor_id": sensor, **dict(zip(FEATURES, values[t, s]))})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)
    return times, values, frame


def sensors_csv(path):
    pd.DataFrame({"sensor_id": SENSORS, "latitude": [25.0, 25.01, 25.02], "longitude": [121.5, 121.51, 121.52]}).to_csv(
        path, index=False
    )
    return path


@pytest.fixture
def long_files(tmp_path):
    times, values, frame = grid_and_rows()
    readings = tmp_path / "readings.csv"
    frame.to_csv(readings, index=False)
    return times, values, readings, sensors_csv(tmp_path / "sensors.csv")


def first_appearance(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["sensor_id"]))


def test_the_grid_comes_back_from_shuffled_rows_with_gaps(long_files):
    times, values, readings, sensors = long_files
    ds = import_long_csv(readings, sensors, timezone="Asia/Taipei", units={"flow": "veh/5min", "speed": "km/h"})
    order = [SENSORS.index(s) for s in first_appearance(pd.read_csv(readings, dtype={"sensor_id": str}))]
    assert list(ds.sensors["sensor_id"]) == [SENSORS[i] for i in order]
    assert ds.features == FEATURES
    assert ds.timestamps.equals(times)
    np.testing.assert_array_equal(ds.values, values[:, order])
    assert ds.meta["interval"] == "5min" and ds.meta["steps_inserted_as_missing"] == 1
    assert ds.meta["units"] == {"flow": "veh/5min", "speed": "km/h", "occupancy": "unknown"}
    assert ds.sensors.set_index("sensor_id").loc["007", "latitude"] == 25.01


def test_small_blocks_give_the_same_dataset(long_files, monkeypatch):
    """Blocks of a few rows: times, sensors and readings gathered across many blocks."""
    _, _, readings, sensors = long_files
    whole = import_long_csv(readings, sensors)
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 256)
    blocks = import_long_csv(readings, sensors)
    np.testing.assert_array_equal(blocks.values, whole.values)
    assert blocks.timestamps.equals(whole.timestamps)
    assert list(blocks.sensors["sensor_id"]) == list(whole.sensors["sensor_id"])


def test_it_agrees_with_wide_csv_on_the_same_readings(tmp_path):
    """One feature written both ways, naive local times and a missing-value code."""
    times, values, frame = grid_and_rows(zone="America/Los_Angeles")
    frame = frame[["timestamp", "sensor_id", "speed"]].copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.strftime("%Y-%m-%d %H:%M")
    frame["speed"] = frame["speed"].fillna(-1)
    long_path = tmp_path / "long.csv"
    frame.to_csv(long_path, index=False)
    wide = frame.pivot(index="timestamp", columns="sensor_id", values="speed")
    wide_path = tmp_path / "wide.csv"
    wide[first_appearance(frame)].reset_index().to_csv(wide_path, index=False, na_rep="")
    sensors = sensors_csv(tmp_path / "sensors.csv")
    kwargs = dict(missing_values=(-1,), timezone="America/Los_Angeles")
    from_long = import_long_csv(long_path, sensors, units="mph", **kwargs)
    from_wide = import_wide_csv(wide_path, sensors, feature="speed", units="mph", **kwargs)
    np.testing.assert_array_equal(from_long.values, from_wide.values)
    assert from_long.timestamps.equals(from_wide.timestamps) and from_long.timestamps.equals(times)
    assert list(from_long.sensors["sensor_id"]) == list(from_wide.sensors["sensor_id"])
    assert from_long.meta["units"] == from_wide.meta["units"] == {"speed": "mph"}


@pytest.mark.parametrize(
    "layout, time_format",
    [("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M"), ("%d.%m.%Y %H:%M:%S%z", "%d.%m.%Y %H:%M:%S%z")],
)
def test_times_in_another_layout_read_with_time_format_agree_with_iso(tmp_path, layout, time_format):
    """An agency's export writes 03/01/2024 07:30; the same readings in ISO 8601 are the truth,
    through long-csv and wide-csv alike (naive local times, and times with offsets)."""
    times, values, frame = grid_and_rows(zone="America/Los_Angeles")
    sensors = sensors_csv(tmp_path / "sensors.csv")
    iso = tmp_path / "iso.csv"
    frame.to_csv(iso, index=False)
    if "%z" not in layout:
        frame = frame.assign(timestamp=pd.to_datetime(frame["timestamp"]).dt.strftime(layout))
    else:
        frame = frame.assign(timestamp=[pd.Timestamp(t).strftime(layout) for t in frame["timestamp"]])
    other = tmp_path / "other.csv"
    frame.to_csv(other, index=False)
    zone = {"timezone": "America/Los_Angeles"}
    truth = import_long_csv(iso, sensors, **zone)
    read = import_long_csv(other, sensors, time_format=time_format, **zone)
    assert read.timestamps.equals(truth.timestamps) and read.timestamps.equals(times)
    np.testing.assert_array_equal(read.values, truth.values)
    speed = frame.pivot(index="timestamp", columns="sensor_id", values="speed")[first_appearance(frame)]
    wide_path = tmp_path / "wide.csv"
    speed.reset_index().to_csv(wide_path, index=False, na_rep="")
    wide = import_wide_csv(wide_path, sensors, time_format=time_format, **zone)
    assert wide.timestamps.equals(times)
    np.testing.assert_array_equal(wide.values[..., 0], truth.values[..., FEATURES.index("speed")])


def test_a_time_off_the_format_names_its_line_and_iso_errors_point_at_time_format(tmp_path):
    sensors = sensors_csv(tmp_path / "s.csv")
    lines = [line.replace("2024-03-01T", "03/01/2024 ", 1) for line in regular_lines()]
    lines[40] = lines[40].replace("03/01/2024", "2024-03-01", 1)
    readings = write_rows(tmp_path / "r.csv", lines)
    with pytest.raises(InputError, match=r"line 42: '2024-03-01 01:05' does not match --time-format '%m/%d/%Y %H:%M'"):
        import_long_csv(readings, sensors, time_format="%m/%d/%Y %H:%M")
    with pytest.raises(
        InputError, match=r"line 2: '03/01/2024 00:00' is not an ISO 8601 .*--time-format '%m/%d/%Y %H:%M'"
    ):
        import_long_csv(readings, sensors)
    day_first = write_rows(
        tmp_path / "d.csv", [line.replace("2024-03-01T", "17-03-2024 ", 1) for line in regular_lines(12)]
    )
    with pytest.raises(
        InputError,
        match=r"line 2: '17-03-2024 00:00' does not match --time-format '%m-%d-%Y %H:%M'; "
        r"--time-format '%d-%m-%Y %H:%M' reads it$",
    ):
        import_long_csv(day_first, sensors, time_format="%m-%d-%Y %H:%M")


@pytest.mark.parametrize(
    "time_format, problem",
    [
        ("%Y-%m-%d %H:%M %Z", "%Z (a zone name) is not read as a zone; write the UTC offset with %z"),
        ("%Y-%m-%d %Q", "'Q' is a bad directive"),
        (" ", "empty; expected strptime codes"),
    ],
)
def test_a_time_format_strptime_cannot_use_is_refused_before_reading(tmp_path, long_files, time_format, problem):
    _, _, readings, sensors = long_files
    for importer in (import_long_csv, import_wide_csv):
        with pytest.raises(InputError, match=re.escape(problem)) as caught:
            importer(readings, sensors, time_format=time_format)
        assert caught.value.where == "--time-format"


def test_a_code_given_twice_and_what_is_left_over_are_named(tmp_path, long_files):
    """A new user's '%M/%d/%Y %H:%M:%S' ended in a regular expression's traceback; '%m/%d/%Y %H:%M'
    on times with seconds did not say what did not match."""
    _, _, readings, sensors = long_files
    with pytest.raises(InputError, match=r"'%M/%d/%Y %H:%M:%S': %M is given twice"):
        import_long_csv(readings, sensors, time_format="%M/%d/%Y %H:%M:%S")
    lines = [line.replace("2024-03-01T", "03/01/2024 ", 1).replace(",", ":00,", 1) for line in regular_lines()]
    with_seconds = write_rows(tmp_path / "r.csv", lines)
    with pytest.raises(InputError, match=r"line 2: '03/01/2024 00:00:00' does not match .* \(':00' is left over\)"):
        import_long_csv(with_seconds, sensors, time_format="%m/%d/%Y %H:%M")
    # without a format, the refused time names the layouts that read it
    with pytest.raises(
        InputError,
        match=re.escape(
            "--time-format '%m/%d/%Y %H:%M:%S' reads it (or --time-format '%d/%m/%Y %H:%M:%S', if the day comes first)"
        ),
    ):
        import_long_csv(with_seconds, sensors)


def test_naive_times_read_as_utc_given_twice_point_at_timezone(tmp_path):
    """Local clock times without --timezone repeat the hour clocks go back: 'given twice' alone
    did not say that the zone was the fix."""
    lines = fall_back_lines(FALL_BACK, naive=True)
    sensors = sensors_csv(tmp_path / "s.csv")
    with pytest.raises(
        InputError,
        match=r"has a row with other readings already, on line \d+; expected one row per time and sensor; the "
        r"times carry no UTC offset and were read as UTC: if they are local clock times, give --timezone",
    ):
        import_long_csv(write_rows(tmp_path / "r.csv", lines), sensors)
    wide = tmp_path / "wide.csv"
    wide.write_text("timestamp,VD-01\n" + "".join(f"{line.split(',')[0]},{i}\n" for i, line in enumerate(lines[::3])))
    with pytest.raises(InputError, match=r"appears twice; a file of one row .*; the times carry no UTC offset"):
        import_wide_csv(wide, sensors)


def test_offsets_read_with_time_format_choose_the_zone_as_iso_offsets_do(tmp_path):
    lines = [
        f"{t:%d.%m.%Y %H:%M%z},{s},1,2"
        for t in pd.date_range("2024-03-01", periods=24, freq="5min", tz="Etc/GMT+8")
        for s in SENSORS
    ]
    ds = import_long_csv(
        write_rows(tmp_path / "r.csv", lines), sensors_csv(tmp_path / "s.csv"), time_format="%d.%m.%Y %H:%M%z"
    )
    assert str(ds.timestamps.tz) == "Etc/GMT+8" and ds.timestamps[0] == pd.Timestamp("2024-03-01T08:00Z")
    assert "the times carry the UTC offset -08:00, kept as Etc/GMT+8" in ds.meta["clock"]


def write_rows(path, lines: list[str]):
    path.write_text("\n".join(["timestamp,sensor_id,flow,speed", *lines]) + "\n")
    return path


def rows_at(*times: str) -> list[str]:
    return [f"{t},{s},1,2" for t in times for s in SENSORS]


FIVE_MINUTES = [f"{hour:02d}:{minute:02d}" for hour in range(2) for minute in range(0, 60, 5)]


def regular_lines(steps: int = 60, start: str = "2024-03-01T00:00") -> list[str]:
    times = pd.date_range(start, periods=steps, freq="5min")
    return [f"{t:%Y-%m-%dT%H:%M},{s},{i % 7},{50 + i % 11}" for i, t in enumerate(times) for s in SENSORS]


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            lambda lines: lines.__setitem__(100, lines[100].replace(",50", ",fifty")),
            "column 'speed', line 102: 'fifty'",
        ),
        (
            lambda lines: lines.__setitem__(130, lines[129].rsplit(",", 1)[0] + ",99"),
            "line 132: sensor 'VD-01' at 2024-03-01T03:35 has a row with other readings already, on line 131",
        ),
        (
            lambda lines: lines.__setitem__(170, lines[10].rsplit(",", 1)[0] + ","),
            "line 172: sensor '007' at 2024-03-01T00:15 has a row with other readings already, on line 12",
        ),
        (lambda lines: lines.__setitem__(170, ",".join(["", *lines[170].split(",")[1:]])), "line 172: blank"),
        (
            lambda lines: lines.__setitem__(152, lines[152].replace(",N3,", ", ,")),
            "column 'sensor_id', line 154: blank",
        ),
        (lambda lines: lines.__setitem__(147, lines[147].replace(":05,", ":05Z,")), "line 149: '2024-03-01T04:05Z'"),
        (lambda lines: lines.__setitem__(120, lines[120].replace(":20,", ":22,")), "line 122: time 2024-03-01T03:22"),
    ],
    ids=["not-a-number", "twice", "twice-blocks-apart", "blank-time", "blank-sensor", "mixed-offsets", "off-grid"],
)
def test_a_bad_row_is_named_by_its_line_across_blocks(tmp_path, monkeypatch, change, problem):
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 300)  # about ten rows a block
    lines = regular_lines()
    change(lines)
    readings = write_rows(tmp_path / "r.csv", lines)
    with pytest.raises(InputError, match="r.csv") as caught:
        import_long_csv(readings, sensors_csv(tmp_path / "s.csv"))
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"time_column": "time"}, "no column 'time' (set --time-column); the header has timestamp, sensor_id"),
        ({"sensor_column": "vd"}, "no column 'vd' (set --sensor-column)"),
        ({"features": ["volume"]}, "no feature column 'volume' (--feature)"),
        ({"features": ["sensor_id"]}, "are the time and sensor columns, not features"),
        ({"units": "km/h"}, "'km/h' for 2 features (flow, speed); give FEATURE=UNIT each"),
        ({"units": {"volume": "veh"}}, "'volume' is not a feature read (flow, speed)"),
        ({"timezone": "Mars/Olympus"}, "is not an IANA time zone"),
        ({"max_values": 100}, "already pass the limit of 100 values"),
    ],
)
def test_options_that_do_not_fit_the_file_are_refused(tmp_path, kwargs, problem):
    readings = write_rows(tmp_path / "r.csv", regular_lines(steps=20))
    with pytest.raises(InputError) as caught:
        import_long_csv(readings, sensors_csv(tmp_path / "s.csv"), **kwargs)
    assert problem in str(caught.value)


def test_only_the_chosen_features_are_read(tmp_path):
    lines = [line + ",north" for line in regular_lines(steps=20)]
    readings = tmp_path / "r.csv"
    readings.write_text("\n".join(["timestamp,sensor_id,flow,speed,direction", *lines]) + "\n")
    sensors = sensors_csv(tmp_path / "s.csv")
    with pytest.raises(InputError, match="column 'direction', line 2: 'north' is not a number; --feature NAME"):
        import_long_csv(readings, sensors)
    ds = import_long_csv(readings, sensors, features=["speed"])
    assert ds.features == ["speed"] and ds.values.shape == (20, 3, 1)
    assert ds.values[0, 0, 0] == 50 and ds.values[12, 1, 0] == 51  # 50 + the step's index % 11


FALL_BACK = pd.date_range("2024-11-03T07:00Z", periods=48, freq="5min").tz_convert(
    "America/Los_Angeles"
)  # 01:00-01:55 twice


def fall_back_lines(stamps, *, naive: bool) -> list[str]:
    """Rows in time order (sensors in a shuffled order at each time), the step's index as flow."""
    rng = np.random.default_rng(3)
    lines = []
    for step, stamp in enumerate(stamps):
        written = f"{stamp:%Y-%m-%dT%H:%M}" if naive else stamp.isoformat()
        lines += [f"{written},{sensor},{step},{50 + SENSORS.index(sensor)}" for sensor in rng.permutation(SENSORS)]
    return lines


@pytest.mark.parametrize("block_bytes", [None, 256])
def test_the_hour_a_dst_change_repeats_is_read_by_each_sensors_order(tmp_path, monkeypatch, block_bytes):
    """Naive 01:00-01:55 happen twice on 2024-11-03 in Los Angeles: a sensor's first row at 01:30
    is daylight time, its second standard time; the offsets written out give the same dataset."""
    if block_bytes:
        monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", block_bytes)  # the two rows in different blocks
    sensors = sensors_csv(tmp_path / "s.csv")
    naive = import_long_csv(
        write_rows(tmp_path / "naive.csv", fall_back_lines(FALL_BACK, naive=True)),
        sensors,
        timezone="America/Los_Angeles",
    )
    with_offsets = import_long_csv(
        write_rows(tmp_path / "offsets.csv", fall_back_lines(FALL_BACK, naive=False)),
        sensors,
        timezone="America/Los_Angeles",
    )
    assert naive.timestamps.equals(with_offsets.timestamps) and len(naive.timestamps) == 48
    np.testing.assert_array_equal(naive.values, with_offsets.values)
    assert naive.values[:, 0, 0].tolist() == list(range(48))  # flow = the step, in true time order
    assert "first row at such a time was read as daylight time, its second as standard time" in naive.meta["clock"]
    assert "2024-11-03 01:00" in naive.meta["clock"] and "clock" not in with_offsets.meta


def test_the_repeated_hour_given_once_is_daylight_time_and_a_third_row_is_refused(tmp_path):
    sensors = sensors_csv(tmp_path / "s.csv")
    once = [stamp for stamp in FALL_BACK if stamp.utcoffset() == pd.Timedelta(hours=-7)]  # 00:00-01:55 PDT
    later = pd.date_range("2024-11-03T02:00-08:00", periods=12, freq="5min")
    ds = import_long_csv(
        write_rows(tmp_path / "once.csv", fall_back_lines(once + list(later), naive=True)),
        sensors,
        timezone="America/Los_Angeles",
    )
    assert len(ds.timestamps) == 48 and np.isnan(ds.values[24:36]).all() and np.isfinite(ds.values[:24]).all()
    assert ds.meta["clock"].endswith("no sensor has a second row, so the standard-time hour is missing")
    lines = fall_back_lines(FALL_BACK, naive=True)
    third = lines[:]
    third.insert(36 * 3, next(line for line in lines[12 * 3 :] if ",VD-01," in line))  # VD-01 at 01:00 a third time
    with pytest.raises(
        InputError, match=r"line 110: sensor 'VD-01' at 2024-11-03T01:00 has a row with other readings already, on line"
    ):
        import_long_csv(write_rows(tmp_path / "third.csv", third), sensors, timezone="America/Los_Angeles")


def test_rows_out_of_time_order_near_the_repeated_hour_are_refused_and_a_lone_row_is_noted(tmp_path):
    """Order is all that tells the two 01:30s apart: a file sorted newest first would swap them
    silently; and a sensor silent in the first hour has its one row read as the first."""
    sensors = sensors_csv(tmp_path / "s.csv")
    zone = {"timezone": "America/Los_Angeles"}
    lines = fall_back_lines(FALL_BACK, naive=True)
    newest_first = write_rows(tmp_path / "reversed.csv", lines[::-1])
    with pytest.raises(InputError, match=r"line 5: the rows of sensor '.*' are not in time order near the hour a DST"):
        import_long_csv(newest_first, sensors, **zone)
    silent = [line for i, line in enumerate(lines) if not (12 * 3 <= i < 24 * 3 and ",N3," in line)]
    ds = import_long_csv(write_rows(tmp_path / "silent.csv", silent), sensors, **zone)
    assert ds.meta["clock"].endswith(
        "; 1 sensor(s) have one row at such a time where others have two, read as daylight time (if it was the "
        "second, write those times with their UTC offset)"
    )
    n3 = list(ds.sensors["sensor_id"]).index("N3")
    assert np.isnan(ds.values[24:36, n3, 0]).all() and ds.values[12:24, n3, 0].tolist() == list(range(24, 36))


def test_the_hour_a_dst_change_skips_is_refused(tmp_path):
    hours = [f"{hour:02d}:{minute:02d}" for hour in range(4) for minute in range(0, 60, 5)]
    spring = write_rows(tmp_path / "spring.csv", rows_at(*(f"2024-03-10T{t}" for t in hours)))
    with pytest.raises(
        InputError,
        match=r"line 74: 2024-03-10T02:00 never happens in America/Los_Angeles \(clocks skip that hour\): the rows "
        r"are mislabelled, or the times are not that zone's clock \(check --timezone\)",
    ):
        import_long_csv(spring, sensors_csv(tmp_path / "s.csv"), timezone="America/Los_Angeles")


def test_the_cli_default_limit_is_the_importers():
    from social_xlstm.cli.data import MAX_VALUES
    from social_xlstm.data.importers.timeline import MAX_GRID_VALUES

    assert MAX_VALUES == MAX_GRID_VALUES


def test_units_as_typed():
    assert parse_units([]) is None
    assert parse_units(["mph"]) == "mph"
    assert parse_units(["flow=veh/5min", "speed = km/h"]) == {"flow": "veh/5min", "speed": "km/h"}
    with pytest.raises(InputError, match="'mph': expected FEATURE=UNIT"):
        parse_units(["flow=veh/5min", "mph"])
    with pytest.raises(InputError, match="given twice"):
        parse_units(["flow=a", "flow=b"])


def test_the_cli_imports_and_a_refused_import_leaves_the_dataset(long_files, tmp_path, capsys):
    _, values, readings, sensors = long_files
    out = tmp_path / "ds"
    command = ["data", "import", "long-csv", str(readings), "--sensors", str(sensors), "--out", str(out)]
    assert main([*command, "--units", "flow=veh/5min", "--timezone", "Asia/Taipei"]) == 0
    captured = capsys.readouterr()
    shown = " ".join(captured.out.split())  # rich wraps at the terminal's width (xdist's is narrow)
    assert "3 sensors x 40 steps x 3 features (flow, speed, occupancy), every 5min" in shown
    ds = read_dataset(out)
    assert ds.meta["units"]["flow"] == "veh/5min" and ds.meta["importer"]["format"] == "long-csv"
    said = " ".join(captured.err.split())
    assert "the unit of 'speed', 'occupancy' is unknown: --units records it" in said
    assert "no road graph given (--edges): training links each sensor to its nearest ones by coordinates" in said
    assert int(np.isfinite(ds.values).sum()) == int(np.isfinite(values).sum())
    before = folder_bytes(out)
    assert main([*command, "--time-column", "time"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "readings.csv" in err and "--time-column" in err
    assert folder_bytes(out) == before
    for layout in ("long-csv", "wide-csv"):  # each passes --time-format on to its importer
        command[2] = layout
        assert main([*command, "--time-format", "%m/%d/%Y %H:%M"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "line 2: '2024-03-01" in err and "does not match --time-format '%m/%d/%Y %H:%M'" in err, err
    assert folder_bytes(out) == before


def test_negative_readings_are_counted_and_their_code_named(tmp_path, capsys):
    """An outage written as -1 imported as a speed of -1 km/h, and inspect said 100% coverage."""
    lines = regular_lines(steps=20)
    for row in (5, 6, 7, 30):
        lines[row] = lines[row].rsplit(",", 1)[0] + ",-1"
    lines[40] = lines[40].rsplit(",", 1)[0] + ",-3"
    readings = write_rows(tmp_path / "r.csv", lines)
    out = tmp_path / "ds"
    command = ["data", "import", "long-csv", str(readings), "--sensors", str(sensors_csv(tmp_path / "s.csv"))]
    assert main([*command, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "5 'speed' readings are negative (4 of them -1): if -1 means 'no reading'" in err
    assert "--missing-value -1" in err and "'flow' readings" not in err
    assert read_dataset(out).meta["counts"]["readings_negative"] == {"flow": 0, "speed": 5}
    assert main(["data", "inspect", str(out)]) == 0
    assert "5 'speed' readings are negative" in capsys.readouterr().out
    assert main([*command, "--out", str(out), "--missing-value", "-1", "--missing-value", "-3"]) == 0
    assert "negative" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "lines, zone, said",
    [
        (rows_at(*(f"2024-03-01T{t}+08:00" for t in FIVE_MINUTES)), "Etc/GMT-8", "offset +08:00, kept as Etc/GMT-8"),
        (
            # the end of DST in Los Angeles: the hour from 01:00 is written twice, at -07:00 then -08:00
            rows_at(
                *(f"2024-11-03T{t}-07:00" for t in FIVE_MINUTES),
                *(f"2024-11-03T01:{t[3:]}-08:00" for t in FIVE_MINUTES[:12]),
            ),
            "UTC",
            "offsets -08:00, -07:00 (daylight saving?) and are kept in UTC",
        ),
        (rows_at(*(f"2024-03-01T{t}" for t in FIVE_MINUTES)), "UTC", "carry no UTC offset and were read as UTC"),
        (rows_at(*(f"2024-03-01T{t}Z" for t in FIVE_MINUTES)), "UTC", None),
    ],
    ids=["one-offset", "dst-offsets", "naive", "utc"],
)
def test_without_timezone_the_times_own_offset_is_kept(tmp_path, capsys, lines, zone, said):
    """A new user's times at -08:00 became a dataset in UTC: predictions and weekends in UTC, without a word."""
    readings = write_rows(tmp_path / "r.csv", lines)
    out = tmp_path / "ds"
    command = ["data", "import", "long-csv", str(readings), "--sensors", str(sensors_csv(tmp_path / "s.csv"))]
    assert main([*command, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    ds = read_dataset(out)
    assert str(ds.timestamps.tz) == zone == ds.meta["timezone"]
    assert (said is None and "clock" not in ds.meta and "the times carry" not in err) or (
        said in ds.meta["clock"] and said in err
    )
    if zone == "Etc/GMT-8":
        assert ds.timestamps[0].hour == 0  # the hours as written, not UTC's 16:00


def test_wide_csv_keeps_the_times_own_offset_too(tmp_path):
    readings = tmp_path / "wide.csv"
    readings.write_text(
        "time," + ",".join(SENSORS) + "\n" + "".join(f"2024-03-01T{t}+08:00,1,2,3\n" for t in FIVE_MINUTES)
    )
    ds = import_wide_csv(readings, sensors_csv(tmp_path / "s.csv"))
    assert str(ds.timestamps.tz) == "Etc/GMT-8" and ds.timestamps[0].hour == 0
    assert "offset +08:00, kept as Etc/GMT-8" in ds.meta["clock"]
    assert "clock" not in import_wide_csv(readings, sensors_csv(tmp_path / "s.csv"), timezone="Asia/Taipei").meta


def test_the_sensors_file_may_name_its_columns_as_the_readings_do(tmp_path):
    """A new user's detector_locations.csv (detector_id, lat, lon) had to be renamed by hand."""
    readings = tmp_path / "r.csv"
    readings.write_text(
        "time,detector_id,speed\n" + "".join(f"2024-03-01T{t},{s},50\n" for t in FIVE_MINUTES for s in SENSORS)
    )
    located = tmp_path / "detectors.csv"
    located.write_text(
        "detector_id,lat,lon,road\n" + "".join(f"{s},25.0{i},121.5{i},A1\n" for i, s in enumerate(SENSORS))
    )
    ds = import_long_csv(readings, located, time_column="time", sensor_column="detector_id")
    assert list(ds.sensors.columns[:4]) == ["sensor_id", "latitude", "longitude", "road"]
    assert ds.sensors.set_index("sensor_id").loc["N3", "longitude"] == 121.52
    readings.write_text(readings.read_text().replace("detector_id", "station", 1))
    with pytest.raises(
        InputError,
        match=r"detectors.csv: expected a header with sensor_id \(or station or id\), latitude, longitude \(any case\)",
    ):
        import_long_csv(readings, located, time_column="time", sensor_column="station")


def awkward_file(path, *, repeat_at: int | None = None):
    """What exports hold: blanks around header names, a trailing comma, an id 'NA', a note with a
    newline inside its quotes, blank lines. Returns the file line of each data row."""
    text, lines, line = ["timestamp , sensor_id, flow,note,"], [], 2
    rows = [(t, s) for t in FIVE_MINUTES for s in ("NA", "B")]
    if repeat_at is not None:
        rows.insert(repeat_at, rows[repeat_at - 5])
    for i, (t, s) in enumerate(rows):
        note = '"kerb\nwork"' if i == 3 else ""
        text.append(f"2024-03-01T{t},{s},{i},{note},")
        lines.append(line)
        line += 2 if i == 3 else 1
        if i in (6, 7):
            text.append("")
            line += 1
    path.write_text("\n".join(text) + "\n")
    return lines


@pytest.mark.parametrize("block_bytes", [1 << 20, 60])
def test_an_awkward_export_reads_and_its_errors_name_the_editors_line(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", block_bytes)
    sensors = tmp_path / "s.csv"
    sensors.write_text("sensor_id,latitude,longitude\nNA,25.0,121.5\nB,25.1,121.6\n")
    awkward_file(tmp_path / "r.csv")
    ds = import_long_csv(tmp_path / "r.csv", sensors, features=["flow"])
    assert list(ds.sensors.sensor_id) == ["NA", "B"] and ds.features == ["flow"]
    assert ds.values[:3, :, 0].tolist() == [[0, 1], [2, 3], [4, 5]]
    assert "note" not in ds.features and len(ds.timestamps) == 24
    with pytest.raises(InputError, match="column 'note', line 5: 'kerb\\\\nwork' is not a number"):
        import_long_csv(tmp_path / "r.csv", sensors)  # every named column: the note too
    lines = awkward_file(tmp_path / "r.csv", repeat_at=20)
    repeated = (
        f"line {lines[20]}: sensor 'B' at 2024-03-01T00:35 has a row with other readings already, on line {lines[15]}"
    )
    with pytest.raises(InputError, match=repeated):
        import_long_csv(tmp_path / "r.csv", sensors, features=["flow"])


def test_offsets_in_one_block_and_none_in_the_next_name_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 300)
    lines = [line.replace(",", "Z,", 1) if i < 90 else line for i, line in enumerate(regular_lines())]
    readings = write_rows(tmp_path / "r.csv", lines)
    with pytest.raises(InputError, match="mixes timestamps with and without a UTC offset") as caught:
        import_long_csv(readings, sensors_csv(tmp_path / "s.csv"))
    line = int(str(caught.value).split("line ")[1].split(":")[0])
    assert line > 2 and lines[line - 2].split(",")[0].endswith("Z") != lines[line - 3].split(",")[0].endswith("Z")


def test_a_run_of_blank_lines_is_no_block(tmp_path, monkeypatch):
    """pyarrow hands a block of blank lines over as a table of no rows: no times, so no offset."""
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 60)
    lines = rows_at(*(f"2024-03-01T{t}Z" for t in FIVE_MINUTES))
    write_rows(tmp_path / "r.csv", [*lines[:30], *[""] * 200, *lines[30:]])
    ds = import_long_csv(tmp_path / "r.csv", sensors_csv(tmp_path / "s.csv"))
    assert len(ds.timestamps) == 24 and np.isfinite(ds.values).all()


def test_an_agencys_station_list_and_a_swapped_time_format_code(tmp_path, capsys):
    """A new user's station list said `ID,Latitude,Longitude,Fwy,Dir` and had to be renamed by
    hand; '%H:%S:%M' for '%H:%M:%S' spread a week over 5-second steps and said nothing."""
    stations = tmp_path / "stations.csv"
    stations.write_text(
        "ID,Latitude,Longitude,Fwy,Dir\nVD-01,34.1,-118.2,5,N\n007,34.2,-118.3,5,S\nN3,34.3,-118.4,10,E\n"
    )
    lines = [line.replace("2024-03-01T", "03/01/2024 ", 1).replace(",", ":00,", 1) for line in regular_lines()]
    readings = write_rows(tmp_path / "r.csv", lines)
    out = tmp_path / "ds"
    command = ["data", "import", "long-csv", str(readings), "--sensors", str(stations), "--out", str(out)]
    assert main([*command, "--time-format", "%m/%d/%Y %H:%M:%S"]) == 0
    ds = read_dataset(out)
    assert ds.sensors.set_index("sensor_id").loc["007", ["latitude", "longitude", "Fwy"]].tolist() == [34.2, -118.3, 5]
    assert "only" not in capsys.readouterr().err
    assert main([*command, "--time-format", "%m/%d/%Y %H:%S:%M"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert re.search(
        r"warning: only 60 of the [\d,]+ steps of every 5s from the first time to the last have a row", said
    )


def test_two_years_joined_newest_first_are_each_in_order_near_their_repeated_hour(tmp_path):
    """Yearly exports joined out of date order: each fall-back day is in order on its own."""
    sensors = sensors_csv(tmp_path / "s.csv")
    earlier = pd.date_range("2023-11-05T07:00Z", periods=48, freq="5min").tz_convert("America/Los_Angeles")
    later = FALL_BACK
    naive = fall_back_lines(later, naive=True) + fall_back_lines(earlier, naive=True)
    offsets = fall_back_lines(later, naive=False) + fall_back_lines(earlier, naive=False)
    zone = {"timezone": "America/Los_Angeles", "max_values": 10**9}
    read = import_long_csv(write_rows(tmp_path / "naive.csv", naive), sensors, **zone)
    truth = import_long_csv(write_rows(tmp_path / "offsets.csv", offsets), sensors, **zone)
    np.testing.assert_array_equal(read.values, truth.values)
    assert read.timestamps.equals(truth.timestamps) and "and on 1 more day(s)" in read.meta["clock"]


def test_the_column_named_by_sensor_column_wins_over_a_generic_id(tmp_path):
    """A sensors file `id,station,lat,lon` whose `id` is a row number: the ids are in `station`."""
    from social_xlstm.data.importers.csv_tables import read_sensor_table

    path = tmp_path / "stations.csv"
    path.write_text("id,station,lat,lon\n1,2,34.1,-118.1\n2,1,34.0,-118.0\n")
    sensors = read_sensor_table(path, ["1", "2"], id_column="station").sensors
    assert sensors.set_index("sensor_id").loc["1", "latitude"] == 34.0
    assert sensors.set_index("sensor_id").loc["1", "id"] == 2  # the row number stays, as another column


def split_rows(tmp_path, lines: list[str], parts: int, name: str = "day") -> list:
    """``lines`` cut into ``parts`` files in order, each with the header: an export of a file per day."""
    return [
        write_rows(tmp_path / f"{name}-{k}.csv", list(chunk)) for k, chunk in enumerate(np.array_split(lines, parts))
    ]


def test_several_files_read_as_the_one_file_they_make_together(tmp_path, monkeypatch):
    _, _, frame = grid_and_rows(steps=60)
    whole = tmp_path / "whole.csv"
    frame.to_csv(whole, index=False)
    parts = []
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        parts.append(tmp_path / f"part-{k}.csv")
        frame.iloc[rows].to_csv(parts[-1], index=False)
    sensors = sensors_csv(tmp_path / "sensors.csv")
    one = import_long_csv(whole, sensors, timezone="Asia/Taipei")
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 256)
    several = import_long_csv(parts, sensors, timezone="Asia/Taipei")
    np.testing.assert_array_equal(one.values, several.values)
    assert one.timestamps.equals(several.timestamps)
    assert list(one.sensors["sensor_id"]) == list(several.sensors["sensor_id"])
    assert several.meta["input_files"]["readings"] == ["part-0.csv", "part-1.csv", "part-2.csv"]
    assert one.meta["input_files"]["readings"] == "whole.csv"


def test_the_repeated_hour_split_between_two_days_files_is_read_by_their_order(tmp_path):
    """The fall-back day cut inside the repeated hour: the second file's 01:00 is standard time."""
    sensors = sensors_csv(tmp_path / "s.csv")
    lines = fall_back_lines(FALL_BACK, naive=True)
    cut = next(i for i, stamp in enumerate(FALL_BACK) if stamp.utcoffset() == pd.Timedelta(hours=-8)) * len(SENSORS)
    first = write_rows(tmp_path / "a.csv", lines[: cut + 1])  # one sensor's second 01:00 row ends the first file
    second = write_rows(tmp_path / "b.csv", lines[cut + 1 :])
    ds = import_long_csv([first, second], sensors, timezone="America/Los_Angeles")
    assert ds.values[:, 0, 0].tolist() == list(range(48))
    with pytest.raises(InputError, match=r"a\.csv: line 2: the rows of sensor .* are not in time order"):
        import_long_csv([second, first], sensors, timezone="America/Los_Angeles")


def test_errors_in_several_files_name_the_file_and_its_line(tmp_path):
    sensors = sensors_csv(tmp_path / "s.csv")
    lines = regular_lines(steps=30)
    a, b, c = split_rows(tmp_path, lines, 3)
    again = write_rows(tmp_path / "again.csv", [line.rsplit(",", 1)[0] + ",99" for line in lines[:3]])
    with pytest.raises(
        InputError,
        match=r"again\.csv: line 2: sensor 'VD-01' at 2024-03-01T00:00 has a row with other readings already, "
        r"on line 2 of day-0\.csv",
    ):
        import_long_csv([a, b, c, again], sensors)
    off_grid = write_rows(
        tmp_path / "late.csv", [line.replace("T02:25", "T02:27") for line in c.read_text().splitlines()[1:]]
    )
    with pytest.raises(
        InputError, match=r"day-0\.csv \.\. late\.csv \(3 files\): late\.csv line 29: time .* is off the"
    ):
        import_long_csv([a, b, off_grid], sensors)
    other = tmp_path / "other.csv"
    other.write_text("timestamp,sensor_id,speed,flow\n")
    with pytest.raises(
        InputError,
        match=r"other\.csv: its header \(timestamp, sensor_id, speed, flow\) differs from "
        r"day-0\.csv's \(timestamp, sensor_id, flow, speed\)",
    ):
        import_long_csv([a, other], sensors)
    with pytest.raises(InputError, match="day-0.csv: given twice"):
        import_long_csv([a, b, tmp_path / "." / "day-0.csv"], sensors)


def test_the_cli_reads_a_file_per_day(tmp_path, capsys):
    sensors = sensors_csv(tmp_path / "s.csv")
    files = split_rows(tmp_path, regular_lines(steps=36), 3)
    out = tmp_path / "ds"
    assert main(["data", "import", "long-csv", *map(str, files), "--sensors", str(sensors), "--out", str(out)]) == 0
    assert "3 sensors x 36 steps" in " ".join(capsys.readouterr().out.split())
    ds = read_dataset(out)
    assert ds.values[:, :, 0].ravel().tolist() == [step % 7 for step in range(36) for _ in SENSORS]


@pytest.mark.parametrize("block_bytes", [None, 300])
def test_a_row_repeated_with_the_same_readings_is_dropped_and_counted(tmp_path, monkeypatch, capsys, block_bytes):
    """Daily exports that overlap by a step, and a row written twice in a row (a blank repeats a blank)."""
    if block_bytes:
        monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", block_bytes)
    sensors = sensors_csv(tmp_path / "s.csv")
    lines = regular_lines(steps=30)
    lines[40] = lines[40].rsplit(",", 1)[0] + ","  # a blank speed
    alone = import_long_csv(write_rows(tmp_path / "all.csv", lines), sensors)
    first = write_rows(tmp_path / "day-0.csv", lines[:45] + [lines[40]])  # the blank row twice
    second = write_rows(tmp_path / "day-1.csv", lines[42:])  # three rows the first file has
    together = import_long_csv([first, second], sensors)
    np.testing.assert_array_equal(together.values, alone.values)
    assert together.meta["repeated_rows_dropped"] == 4 and "repeated_rows_dropped" not in alone.meta
    out = tmp_path / "ds"
    assert (
        main(["data", "import", "long-csv", str(first), str(second), "--sensors", str(sensors), "--out", str(out)]) == 0
    )
    assert "4 rows repeated an earlier row of their time and sensor with the same readings" in " ".join(
        capsys.readouterr().err.split()
    )


def test_a_sensor_the_station_list_lacks_is_warned_of_at_import(tmp_path, capsys):
    readings = write_rows(tmp_path / "r.csv", regular_lines(steps=12))
    listed = tmp_path / "s.csv"
    listed.write_text("sensor_id,latitude,longitude\nVD-01,25.0,121.5\nN3,25.02,121.52\n")  # no 007
    assert (
        main(["data", "import", "long-csv", str(readings), "--sensors", str(listed), "--out", str(tmp_path / "ds")])
        == 0
    )
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: 1 sensors have no coordinates ('007'; the sensors file does not give their latitude" in err
    assert read_dataset(tmp_path / "ds").meta["sensors_without_coordinates"] == 1
    assert main(["data", "inspect", str(tmp_path / "ds"), "--json", str(tmp_path / "q.json")]) == 0
    assert "note: 1 sensors have no coordinates (007)" in " ".join(capsys.readouterr().out.split())


def test_a_date_and_a_time_of_day_in_two_columns_read_as_one_time(tmp_path, capsys):
    """A report with the date in one column (with a zero time) and the interval's end in another."""
    sensors = sensors_csv(tmp_path / "s.csv")
    iso = regular_lines(steps=24)
    iso_path = write_rows(tmp_path / "iso.csv", iso)
    split = tmp_path / "report.csv"
    rows = []
    for line in iso:
        stamp, rest = line.split(",", 1)
        when = pd.Timestamp(stamp)
        rows.append(f"{rest.split(',', 1)[0]},{when:%d/%m/%Y} 00:00:00,{when:%H:%M:%S},{rest.split(',', 1)[1]}")
    split.write_text("Site Name,Report Date,Time Period Ending,flow,speed\n" + "\n".join(rows) + "\n")
    fmt = "%d/%m/%Y 00:00:00 %H:%M:%S"
    ds = import_long_csv(
        split, sensors, time_column=["Report Date", "Time Period Ending"], sensor_column="Site Name", time_format=fmt
    )
    expected = import_long_csv(iso_path, sensors)
    np.testing.assert_array_equal(ds.values, expected.values)
    assert ds.timestamps.equals(expected.timestamps)
    split.write_text(split.read_text().replace("01/03/2024 00:00:00,01:05:00", "01/03/2024 00:00:00,1:5", 1))
    with pytest.raises(InputError, match=r"report\.csv: line 41: '01/03/2024 00:00:00 1:5' does not match"):
        import_long_csv(
            split,
            sensors,
            time_column=["Report Date", "Time Period Ending"],
            sensor_column="Site Name",
            time_format=fmt,
        )
    out = tmp_path / "ds"
    args = ["data", "import", "long-csv", str(iso_path), "--sensors", str(sensors), "--out", str(out)]
    assert main([*args, "--time-column", "timestamp", "--time-column", "sensor_id"]) == 2
    assert "--sensor-column: 'sensor_id' is also a time column" in capsys.readouterr().err


def test_a_day_past_the_twelfth_settles_the_layout_a_refused_time_suggests(tmp_path):
    sensors = sensors_csv(tmp_path / "s.csv")
    lines = [line.replace("2024-03-01T", "01/03/2024 ", 1) for line in regular_lines(steps=12)]
    lines += [line.replace("2024-03-01T", "13/03/2024 ", 1) for line in regular_lines(steps=12)]
    with pytest.raises(InputError, match=r"--time-format '%d/%m/%Y %H:%M' reads it$"):
        import_long_csv(write_rows(tmp_path / "r.csv", lines), sensors)


def test_times_that_are_all_midnights_point_at_a_time_of_day_column(tmp_path):
    """A report's date column read alone: each sensor has many rows a day."""
    sensors = sensors_csv(tmp_path / "s.csv")
    lines = [f"2024-03-0{day}T00:00,{sensor},{i},50" for day in (1, 2) for i in range(3) for sensor in SENSORS]
    with pytest.raises(
        InputError,
        match=r"has a row with other readings already.*every time in 'timestamp' is a "
        r"midnight: if the time of day is in another column, give --time-column twice",
    ):
        import_long_csv(write_rows(tmp_path / "r.csv", lines), sensors)


def test_a_wide_export_read_whole_says_every_column_became_a_feature(tmp_path, capsys):
    sensors = sensors_csv(tmp_path / "s.csv")
    lines = [f"{line},{i % 5},{i % 3}" for i, line in enumerate(regular_lines(steps=12))]
    path = tmp_path / "r.csv"
    path.write_text("timestamp,sensor_id,flow,speed,Time Interval,class_2\n" + "\n".join(lines) + "\n")
    out = tmp_path / "ds"
    assert main(["data", "import", "long-csv", str(path), "--sensors", str(sensors), "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: every column besides the time and the sensor became a feature (4): --feature reads only" in err
    assert (
        main(
            [
                "data",
                "import",
                "long-csv",
                str(path),
                "--sensors",
                str(sensors),
                "--out",
                str(out),
                "--feature",
                "flow",
                "--feature",
                "speed",
            ]
        )
        == 0
    )
    assert "became a feature" not in capsys.readouterr().err
