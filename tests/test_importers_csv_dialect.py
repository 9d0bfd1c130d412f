"""A user's CSV as exports elsewhere write it: separated by semicolons or tabs, with decimal
commas (what spreadsheets in much of Europe save), each read as the same file written with
commas and decimal points; and a station list in its own words (--sensors-field)."""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import pytest
from test_importers_long_csv import SENSORS, grid_and_rows

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset
from social_xlstm.data.importers import csv_blocks, csv_dialect
from social_xlstm.data.importers.csv_tables import read_sensor_table
from social_xlstm.data.importers.long_csv import import_long_csv
from social_xlstm.data.importers.wide_csv import import_wide_csv
from social_xlstm.errors import InputError
from social_xlstm.graph.config import build_graph

SEMICOLON_COMMA = {"sep": ";", "decimal": ","}


def sensors_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"sensor_id": SENSORS, "latitude": [25.0, 25.0125, 25.02], "longitude": [121.5, 121.51, 121.5275]}
    )


def write_pair(tmp_path, frame: pd.DataFrame, name: str, **layout) -> tuple:
    """The same table written twice: plain, and with ``layout`` (pandas' sep / decimal)."""
    plain, other = tmp_path / f"{name}.csv", tmp_path / f"{name}-other.csv"
    frame.to_csv(plain, index=False)
    frame.to_csv(other, index=False, **layout)
    return plain, other


def assert_same_dataset(a, b):
    np.testing.assert_array_equal(a.values, b.values)
    assert a.timestamps.equals(b.timestamps)
    pd.testing.assert_frame_equal(a.sensors, b.sensors)
    if a.edges is None:
        assert b.edges is None
    else:
        pd.testing.assert_frame_equal(a.edges, b.edges)


def test_a_semicolon_file_with_decimal_commas_reads_as_the_comma_file(tmp_path):
    _, _, frame = grid_and_rows()
    readings, readings_eu = write_pair(tmp_path, frame, "readings", **SEMICOLON_COMMA)
    sensors, sensors_eu = write_pair(tmp_path, sensors_frame(), "sensors", **SEMICOLON_COMMA)
    edges = pd.DataFrame({"from": ["VD-01", "007"], "to": ["007", "N3"], "distance_m": [812.5, 1200.25]})
    edges_plain, edges_eu = write_pair(tmp_path, edges, "edges", **SEMICOLON_COMMA)
    plain = import_long_csv(readings, sensors, edges_csv=edges_plain, timezone="Asia/Taipei")
    eu = import_long_csv(readings_eu, sensors_eu, edges_csv=edges_eu, timezone="Asia/Taipei")
    assert ";" in readings_eu.read_text() and "," in readings_eu.read_text().splitlines()[1]
    assert_same_dataset(plain, eu)
    layout = "semicolon-separated, decimal commas"
    assert eu.meta["csv_layout"] == {"readings": layout, "sensors": layout, "edges": layout}
    assert "csv_layout" not in plain.meta


def test_a_tab_separated_file_read_in_small_blocks(tmp_path, monkeypatch):
    _, _, frame = grid_and_rows(seed=3)
    readings, readings_tab = write_pair(tmp_path, frame, "readings", sep="\t")
    sensors = tmp_path / "sensors.csv"
    sensors_frame().to_csv(sensors, index=False)
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 256)
    tab = import_long_csv(readings_tab, sensors)
    assert_same_dataset(import_long_csv(readings, sensors), tab)
    assert tab.meta["csv_layout"] == {"readings": "tab-separated, decimal points"}


def test_wide_csv_with_decimal_commas(tmp_path):
    times, values, frame = grid_and_rows(zone="Europe/Amsterdam")
    wide = frame.pivot(index="timestamp", columns="sensor_id", values="speed")[SENSORS].reset_index()
    readings, readings_eu = write_pair(tmp_path, wide, "wide", **SEMICOLON_COMMA)
    sensors, sensors_eu = write_pair(tmp_path, sensors_frame(), "sensors", **SEMICOLON_COMMA)
    eu = import_wide_csv(readings_eu, sensors_eu, feature="speed", timezone="Europe/Amsterdam")
    assert_same_dataset(import_wide_csv(readings, sensors, feature="speed", timezone="Europe/Amsterdam"), eu)
    np.testing.assert_array_equal(eu.values[:, :, 0], values[:, :, 1])
    assert eu.timestamps.equals(times)


def test_a_headerless_station_list_with_decimal_commas(tmp_path):
    """Its first line splits into three fields on commas and on semicolons alike."""
    path = tmp_path / "locations.csv"
    path.write_text("773869;34,15497;-118,31829\n767541;34,11621;-118,23799\n")
    sensors, unlocated, _ = read_sensor_table(path, ["767541", "773869"])
    assert unlocated == 0
    assert sensors["latitude"].tolist() == [34.11621, 34.15497]
    assert sensors["longitude"].tolist() == [-118.23799, -118.31829]


def test_numbers_written_both_ways_are_refused_naming_both_lines(tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text("timestamp;sensor_id;speed\n2024-03-01T00:00;A;61,5\n2024-03-01T00:05;A;60.25\n")
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("sensor_id,latitude,longitude\nA,25.0,121.5\n")
    with pytest.raises(
        InputError, match=r"decimal comma \(line 2: '61,5'\) and with a decimal point \(line 3: '60.25'\)"
    ):
        import_long_csv(path, sensors)


@pytest.mark.parametrize("importer", ["long", "wide"])
def test_a_decimal_point_past_the_sample_is_no_number_and_named_by_its_line(tmp_path, monkeypatch, importer):
    monkeypatch.setattr(csv_dialect, "SAMPLE_BYTES", 64)
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("sensor_id,latitude,longitude\nA,25.0,121.5\n")
    path = tmp_path / "readings.csv"
    times = [f"2024-03-01T00:{m:02d}" for m in range(0, 60, 5)]
    cells = ["61,5"] * len(times)
    cells[9] = "60.25"
    if importer == "long":
        path.write_text("timestamp;sensor_id;speed\n" + "".join(f"{t};A;{c}\n" for t, c in zip(times, cells)))
        read = import_long_csv
    else:
        path.write_text("timestamp;A\n" + "".join(f"{t};{c}\n" for t, c in zip(times, cells)))
        read = import_wide_csv
    with pytest.raises(
        InputError,
        match=r"line 11: '60.25' is not a number; the file was read with decimal commas, as its first MiB writes",
    ):
        read(path, sensors)


def test_the_cli_says_how_it_read_the_file(tmp_path, capsys):
    _, _, frame = grid_and_rows()
    _, readings = write_pair(tmp_path, frame, "readings", **SEMICOLON_COMMA)
    sensors = tmp_path / "sensors.csv"
    sensors_frame().to_csv(sensors, index=False)
    out = tmp_path / "ds"
    assert main(["data", "import", "long-csv", str(readings), "--sensors", str(sensors), "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "read the readings file readings-other.csv as semicolon-separated, decimal commas" in err
    assert "sensors file" not in err
    assert read_dataset(out).meta["csv_layout"] == {"readings": "semicolon-separated, decimal commas"}


def road_sensors(tmp_path):
    """A Dutch station list: its own column names, two carriageways of one road, km posts."""
    path = tmp_path / "meetpunten.csv"
    pd.DataFrame(
        {
            "ID": SENSORS,
            "Weg": ["A2"] * 3,
            "Richting": ["N", "N", "S"],
            "Breedtegraad": [52.00, 52.01, 52.005],
            "Lengtegraad": [5.0, 5.0, 5.0003],
            "Hectometer": [10.0, 11.1, 10.6],
        }
    ).to_csv(path, index=False, **SEMICOLON_COMMA)
    return path


def test_a_station_list_in_its_own_words_gives_the_graph_its_upstream_neighbours(tmp_path, capsys):
    _, _, frame = grid_and_rows()
    readings = tmp_path / "readings.csv"
    frame.to_csv(readings, index=False)
    fields = [
        "latitude=Breedtegraad",
        "longitude=Lengtegraad",
        "road=Weg",
        "direction=Richting",
        "position_km=Hectometer",
    ]
    out = tmp_path / "ds"
    args = ["data", "import", "long-csv", str(readings), "--sensors", str(road_sensors(tmp_path)), "--out", str(out)]
    assert main([*args, *(f"--sensors-field={field}" for field in fields)]) == 0
    ds = read_dataset(out)
    sensors = ds.sensors.set_index("sensor_id")
    assert sensors.loc["007", ["latitude", "longitude", "position_km"]].tolist() == [52.01, 5.0, 11.1]
    assert sensors.loc["N3", "direction"] == "S" and sensors.loc["N3", "road"] == "A2"
    graph = build_graph(ds, {"method": "coordinates", "k": 2})
    ids = graph.sensor_ids
    upstream = {(ids[s], ids[t]): int(u) for (s, t), u in zip(graph.edge_index.T.tolist(), graph.upstream.tolist())}
    assert upstream[("VD-01", "007")] == 1 and upstream[("007", "VD-01")] == -1  # northbound, km rising
    assert upstream[("N3", "VD-01")] == 0  # the other carriageway


@pytest.mark.parametrize(
    "fields, problem",
    [
        (["latitude=Lat"], "meetpunten.csv: no column 'Lat' (--sensors-field latitude=Lat); the header has ID, Weg"),
        (
            ["height=Weg"],
            "--sensors-field: 'height' is not a field; expected one of sensor_id, latitude, longitude, road",
        ),
        (["latitude"], "--sensors-field: 'latitude': expected ROLE=COLUMN"),
        (["road=Weg", "road=Richting"], "--sensors-field: 'road' is given twice"),
    ],
)
def test_a_sensors_field_that_does_not_fit_is_refused(tmp_path, capsys, fields, problem):
    readings = tmp_path / "readings.csv"
    grid_and_rows()[2].to_csv(readings, index=False)
    out = tmp_path / "ds"
    args = ["data", "import", "long-csv", str(readings), "--sensors", str(road_sensors(tmp_path)), "--out", str(out)]
    assert main([*args, *(f"--sensors-field={field}" for field in fields)]) == 2
    assert problem in " ".join(capsys.readouterr().err.split()) and not out.exists()


def test_feature_columns_renamed_at_import_carry_their_units(tmp_path):
    path = tmp_path / "metingen.csv"
    path.write_text(
        "Tijdstip;Detector;Intensiteit (vtg/u);Snelheid (km/u)\n"
        + "".join(
            f"2025-03-17T00:{m:02d};VD-01;{120 + m};{98 + m / 10:.1f}\n".replace(".", ",") for m in range(0, 60, 5)
        )
    )
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("sensor_id,latitude,longitude\nVD-01,52.0,5.0\n")
    read = functools.partial(import_long_csv, path, sensors, time_column="Tijdstip", sensor_column="Detector")
    ds = read(features=["Intensiteit (vtg/u)=flow", "Snelheid (km/u)=speed"], units={"flow": "veh/h", "speed": "km/h"})
    assert ds.features == ["flow", "speed"] and ds.meta["units"] == {"flow": "veh/h", "speed": "km/h"}
    assert ds.values[1, 0].tolist() == [125.0, pytest.approx(98.5)]
    reversed_order = read(features=["Snelheid (km/u)=speed", "Intensiteit (vtg/u)=flow"])  # as asked, not the file's
    assert reversed_order.features == ["speed", "flow"] and reversed_order.values[1, 0].tolist() == [
        pytest.approx(98.5),
        125.0,
    ]
    with pytest.raises(InputError, match="--feature: two columns would be named alike: speed, speed"):
        read(features=["Intensiteit (vtg/u)=speed", "Snelheid (km/u)=speed"])


def test_a_sample_cut_inside_a_line_after_a_byte_order_mark_is_no_evidence(tmp_path, monkeypatch):
    """Excel's "CSV UTF-8" starts with a BOM: the 1 MiB sample must drop its cut line by bytes,
    or a date cut to '01.01' reads as a decimal point beside the file's decimal commas."""
    path = tmp_path / "eu.csv"
    header, line = "timestamp;sensor_id;speed\n", "01.01.2024 00:05;A;12,5\n"
    path.write_bytes(("\ufeff" + header + line * 3).encode())
    monkeypatch.setattr(csv_dialect, "SAMPLE_BYTES", 3 + len(header) + 2 * len(line) + 5)  # cut after '01.01'
    assert csv_dialect.dialect_of(path) == csv_dialect.CsvDialect(";", ",")


def test_a_cell_a_thousands_separator_could_have_written_is_no_evidence(tmp_path):
    """A tab file whose only marks are 1,234: read with decimal points, and the cell refused
    with the reason, never 1.234 vehicles."""
    path = tmp_path / "readings.tsv"
    path.write_text("timestamp\tsensor_id\tflow\n2024-03-01T00:00\tA\t987\n2024-03-01T00:05\tA\t1,234\n")
    sensors = tmp_path / "sensors.csv"
    sensors.write_text("sensor_id,latitude,longitude\nA,25.0,121.5\n")
    assert csv_dialect.dialect_of(path) == csv_dialect.CsvDialect("\t", ".")
    with pytest.raises(InputError, match=r"line 3: '1,234' is not a number; the file was read with decimal points"):
        import_long_csv(path, sensors)


def test_a_one_line_headerless_list_and_a_one_column_file(tmp_path):
    one_line = tmp_path / "one.csv"
    one_line.write_text("773869;34,15;-118,31\n")
    sensors = read_sensor_table(one_line, ["773869"]).sensors
    assert sensors[["latitude", "longitude"]].values.tolist() == [[34.15, -118.31]]
    one_column = tmp_path / "ids.csv"
    one_column.write_text("sensor_id\nA\n")
    assert csv_dialect.dialect_of(one_column).plain


@pytest.mark.parametrize(
    "features, problem",
    [
        (["Snelheid (km/u)=timestamp"], "'timestamp' names the dataset's own timestamp column"),
        (["Snelheid (km/u)=a", "Snelheid (km/u)=b"], "column 'Snelheid (km/u)' is given twice"),
    ],
)
def test_a_feature_name_that_cannot_be_is_refused_before_reading(tmp_path, features, problem):
    path = tmp_path / "r.csv"
    path.write_text("Tijdstip;Detector;Snelheid (km/u)\n2025-03-17T00:00;A;98,5\n")
    with pytest.raises(InputError, match=re.escape(problem)):
        import_long_csv(
            path, tmp_path / "absent.csv", time_column="Tijdstip", sensor_column="Detector", features=features
        )


def test_the_sensors_file_ids_named_by_sensors_field_win_over_a_numeric_id(tmp_path):
    """A published site list: Id is a number, Name is what the readings call the site."""
    path = tmp_path / "sites.csv"
    path.write_text("Id,Name,Longitude,Latitude\n101,M1/2259B,-1.25,52.5\n102,M1/2263A,-1.26,52.6\n")
    sensors, unlocated, _ = read_sensor_table(path, ["M1/2263A", "M1/2259B"], fields={"sensor_id": "Name"})
    assert unlocated == 0 and sensors["latitude"].tolist() == [52.6, 52.5] and sensors["Id"].tolist() == [102, 101]


def test_a_network_wide_site_list_gives_the_readings_sites_and_a_wrong_id_column_is_named(tmp_path, capsys):
    """WebTRIS publishes one national list (numeric Id, the reports' Name): the extra sites are
    left out and counted; read by its Id column, it names none of the readings' sites."""
    _, _, frame = grid_and_rows()
    readings = tmp_path / "readings.csv"
    frame.to_csv(readings, index=False)
    sites = tmp_path / "sites.csv"
    rows = [
        (3546 + i, name, -1.2 - i / 100, 52.1 + i / 100) for i, name in enumerate([*SENSORS, "M1/2259B", "A11/8012A"])
    ]
    sites.write_text("Id,Name,Longitude,Latitude\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows))
    out = tmp_path / "ds"
    args = ["data", "import", "long-csv", str(readings), "--sensors", str(sites), "--out", str(out)]
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "its ids (column 'Id') name none of the readings' sensors (its first: '3546', the readings' first:" in err
    assert "--sensors-field sensor_id=COLUMN" in err and not out.exists()
    assert main([*args, "--sensors-field", "sensor_id=Name"]) == 0
    assert "note: 2 sensors of the sensors file have no readings and were left out" in " ".join(
        capsys.readouterr().err.split()
    )
    ds = read_dataset(out)
    assert sorted(ds.sensor_ids) == sorted(SENSORS) and ds.meta["sensors_listed_without_readings"] == 2
    assert ds.sensors.set_index("sensor_id").loc["007", "Id"] == 3547
