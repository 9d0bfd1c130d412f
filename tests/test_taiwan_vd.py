"""The taiwan-vd importer against hand-computed values, an independent pandas reference, and the CLI."""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import py7zr
import pytest
from conftest import tiny_train_args
from taiwan_feed import FeedSpec, iter_snapshots, static_vds, write_feed

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset, write_dataset
from social_xlstm.data.importers.taiwan_vd import import_taiwan_vd, sources
from social_xlstm.data.importers.taiwan_vd.blocks import RowBlocks, resident_blocks
from social_xlstm.data.importers.taiwan_vd.xml_records import read_xml
from social_xlstm.errors import InputError

NS = "http://traffic.transportdata.tw/standard/traffic/schema/"
HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    f'<{{root}} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="{NS}">\n'
)

VDLIST_V1 = (
    HEAD.format(root="VDList")
    + """  <UpdateTime>2025-03-17T00:46:00+08:00</UpdateTime>
  <UpdateInterval>86400</UpdateInterval>
  <AuthorityCode>THB</AuthorityCode>
  <VDs>
    <VD>
      <VDID>VD-11-0020-002-01</VDID>
      <SubAuthorityCode>THB-NE</SubAuthorityCode>
      <BiDirectional>1</BiDirectional>
      <DetectionLinks>
        <DetectionLink>
          <LinkID>3000200000176F</LinkID>
          <RoadDirection>E</RoadDirection>
          <LaneNum>2</LaneNum>
        </DetectionLink>
        <DetectionLink>
          <LinkID>3000200000176T</LinkID>
          <RoadDirection>W</RoadDirection>
          <LaneNum>1</LaneNum>
        </DetectionLink>
      </DetectionLinks>
      <PositionLon>121.459501</PositionLon>
      <PositionLat>25.149709</PositionLat>
      <RoadID>300020</RoadID>
      <RoadName>臺2線</RoadName>
      <RoadClass>3</RoadClass>
      <LocationMile>17K+900</LocationMile>
    </VD>
    <VD>
      <VDID>VD-11-0020-008-01</VDID>
      <DetectionLinks>
        <DetectionLink>
          <LinkID>3000200000180F</LinkID>
          <RoadDirection>N</RoadDirection>
          <LaneNum>1</LaneNum>
        </DetectionLink>
      </DetectionLinks>
      <PositionLon>121.5</PositionLon>
      <PositionLat>25.0</PositionLat>
      <RoadID>300020</RoadID>
      <RoadName>臺2線</RoadName>
    </VD>
  </VDs>
</VDList>
"""
)

# A later version: VD 002-01 disappeared, VD 008-01 moved, VD 009-01 appeared (and never reports).
VDLIST_V2 = (
    HEAD.format(root="VDList")
    + """  <UpdateTime>2025-03-18T00:10:00+08:00</UpdateTime>
  <UpdateInterval>86400</UpdateInterval>
  <AuthorityCode>THB</AuthorityCode>
  <VDs>
    <VD>
      <VDID>VD-11-0020-008-01</VDID>
      <DetectionLinks>
        <DetectionLink><LinkID>3000200000180F</LinkID><RoadDirection>N</RoadDirection><LaneNum>1</LaneNum></DetectionLink>
      </DetectionLinks>
      <PositionLon>121.6</PositionLon>
      <PositionLat>25.1</PositionLat>
      <RoadID>300020</RoadID>
      <RoadName>臺2線</RoadName>
    </VD>
    <VD>
      <VDID>VD-11-0020-009-01</VDID>
      <DetectionLinks>
        <DetectionLink><LinkID>3000200000190F</LinkID><RoadDirection>S</RoadDirection><LaneNum>2</LaneNum></DetectionLink>
      </DetectionLinks>
      <PositionLon>121.7</PositionLon>
      <PositionLat>25.2</PositionLat>
      <RoadID>300020</RoadID>
      <RoadName>臺2線</RoadName>
    </VD>
  </VDs>
</VDList>
"""
)


def lane(speed, occupancy, small, large) -> str:
    return (
        f"<Lane><LaneID>0</LaneID><LaneType>1</LaneType><Speed>{speed}</Speed><Occupancy>{occupancy}</Occupancy>"
        f"<Vehicles><Vehicle><VehicleType>S</VehicleType><Volume>{small}</Volume></Vehicle>"
        f"<Vehicle><VehicleType>L</VehicleType><Volume>{large}</Volume></Vehicle></Vehicles></Lane>"
    )


def vdlive(vdid: str, minute: int, links: dict[str, list[tuple]]) -> str:
    flows = "".join(
        f"<LinkFlow><LinkID>{link}</LinkID><Lanes>{''.join(lane(*reading) for reading in lanes)}</Lanes></LinkFlow>"
        for link, lanes in links.items()
    )
    return (
        f"<VDLive><VDID>{vdid}</VDID><LinkFlows>{flows}</LinkFlows><Status>0</Status>"
        f"<DataCollectTime>2025-03-18T00:{minute:02d}:20+08:00</DataCollectTime></VDLive>"
    )


def vdlivelist(minute: int, lives: list[str]) -> str:
    return (
        HEAD.format(root="VDLiveList") + f"<UpdateTime>2025-03-18T00:{minute:02d}:40+08:00</UpdateTime>"
        "<UpdateInterval>60</UpdateInterval><AuthorityCode>THB</AuthorityCode>"
        f"<VDLives>{''.join(lives)}</VDLives></VDLiveList>\n"
    )


# (speed, occupancy, small-car volume, large-vehicle volume) per lane, minute by minute.
EAST_NORMAL = [(60.0, 10.0, 3, 1), (90.0, 4.0, 2, 0)]
EAST = {
    0: EAST_NORMAL,
    1: EAST_NORMAL,
    2: [(-99, 10.0, 3, 1), (90.0, 4.0, 2, 0)],
    3: [(60.0, 255, 3, 1), (90.0, 4.0, 2, 0)],
    4: EAST_NORMAL,
    5: EAST_NORMAL,
    6: EAST_NORMAL,
}
WEST = {
    0: [(50.0, 20.0, 5, 0)],
    1: [(50.0, 20.0, 5, 0)],
    2: [(50.0, 20.0, 5, -99)],
    3: [(50.0, 20.0, 5, 0)],
    4: [(50.0, 20.0, 5, 0)],
    5: [(50.0, 20.0, 5, 0)],
    6: [(-1, -1, -1, -1)],
}
NORTH = {
    0: [(0.0, 0.0, 0, 0)],
    1: [(0.0, 0.0, 0, 0)],
    2: [(70.0, 3.0, 2, 0)],
    3: [(70.0, 3.0, 2, 0)],
    4: [(70.0, 3.0, 2, 0)],
    5: [(40.0, 5.0, -99, 0)],
    6: [(60.0, 0.0, 0, 0)],
    15: [(80.0, 1.0, 1, 0)],
}


def live_minute(minute: int) -> str:
    lives = []
    if minute in EAST:
        # the live feed pads the last VDID field to 3 digits; the VDList uses 2
        lives.append(
            vdlive("VD-11-0020-002-001", minute, {"3000200000176F": EAST[minute], "3000200000176T": WEST[minute]})
        )
        # differs in value (2, not 1): another detector, which no VDList knows
        lives.append(vdlive("VD-11-0020-002-002", minute, {"3000200000176F": [(55.0, 5.0, 1, 0)]}))
    lives.append(vdlive("VD-11-0020-008-01", minute, {"3000200000180F": NORTH[minute]}))
    return vdlivelist(minute, lives)


@pytest.fixture
def snapshots(tmp_path: Path) -> Path:
    root = tmp_path / "feed"
    for minute in [0, 1, 2, 3, 4, 5, 6, 15]:
        folder = root / f"2025-03-18_00-{minute:02d}-40"
        folder.mkdir(parents=True)
        (folder / "VDList.xml").write_text(VDLIST_V2 if minute == 15 else VDLIST_V1, encoding="utf-8")
        (folder / "VDLiveList.xml").write_text(live_minute(minute), encoding="utf-8")
    repeat = root / "2025-03-18_00-00-50"  # a second poll before the detectors updated: all repeats
    shutil.copytree(root / "2025-03-18_00-00-40", repeat)
    (repeat / "VDLiveList.xml").write_text(
        live_minute(0).replace("00:00:40+08:00</UpdateTime>", "00:00:50+08:00</UpdateTime>"), encoding="utf-8"
    )
    (root / "README.txt").write_text("collected by a cron job\n")
    return root


NAN = math.nan
# [time, sensor, (flow, speed, occupancy)], worked out by hand from the tables above
EXPECTED = np.array(
    [
        # 00:00: east all 5 minutes: flow 5 x 6; speed (4 x (60*4 + 90*2) + 90*2) / (4*6 + 2);
        #        occupancy (4 x 14 + 4) / 9
        #        west: minute 2 has a sentinel volume -> 4 complete minutes of 5 veh, scaled to 25; north: 0+0+2+2+2
        [[30, 1860 / 26, 60 / 9], [25, 50, 20], [6, 70, 9 / 5]],
        # 00:05: only 2 of 5 minutes -> flow missing; north: no volume weight -> plain mean of 40 and 60
        [[NAN, 70, 7], [NAN, 50, 20], [NAN, 50, 2.5]],
        # 00:10: no snapshots at all
        [[NAN, NAN, NAN], [NAN, NAN, NAN], [NAN, NAN, NAN]],
        [[NAN, NAN, NAN], [NAN, NAN, NAN], [NAN, 80, 1]],
    ]
)


def test_hand_computed_snapshots(snapshots: Path):
    ds = import_taiwan_vd([snapshots]).load()
    assert ds.sensor_ids == ["VD-11-0020-002-01:E", "VD-11-0020-002-01:W", "VD-11-0020-008-01:N"]
    assert ds.features == ["flow", "speed", "occupancy"]
    assert list(ds.timestamps) == list(pd.date_range("2025-03-18 00:00", periods=4, freq="5min", tz="Asia/Taipei"))
    np.testing.assert_allclose(ds.values, EXPECTED, rtol=1e-6)
    sensors = ds.sensors.set_index("sensor_id")
    # VD 002-01 is gone from the newer VDList but keeps its last known position; 008-01 moved
    assert sensors.loc["VD-11-0020-002-01:E", ["latitude", "longitude"]].tolist() == [25.149709, 121.459501]
    assert sensors.loc["VD-11-0020-008-01:N", ["latitude", "longitude"]].tolist() == [25.1, 121.6]
    assert sensors["lanes"].tolist() == [2, 1, 1]
    assert sensors["direction"].tolist() == ["E", "W", "N"]
    assert sensors["link_id"].tolist() == ["3000200000176F", "3000200000176T", "3000200000180F"]
    assert set(sensors["road_name"]) == {"臺2線"}
    counts = ds.meta["import_counts"]
    assert ds.meta["unmatched_live_records"] == 7 and ds.meta["unmatched_vdids"] == ["VD-11-0020-002-002"]
    assert counts["live_records_read"] == 4 * 7 + 4 + 1
    assert counts["live_records_deduplicated"] == 4
    assert counts["live_records_used"] == 7 + 7 + 8
    assert counts["vdlist_versions"] == 2 and counts["identical_files_skipped"] == 7  # VDList copies
    assert counts["static_detectors"] == 3 and counts["static_links_without_readings"] == 1
    assert counts["other_files_skipped"] == 1
    assert counts["values_missing"] == {"speed_sentinel": 2, "occupancy_sentinel": 2, "volume_sentinel": 4}
    assert counts["flow_intervals_scaled_for_missing_minutes"] == 1  # west at 00:00
    assert "Open Government Data License" in ds.meta["licence"]


def test_files_in_any_order_give_the_same_dataset(snapshots: Path):
    files = sorted(snapshots.rglob("*.xml"))
    forward = import_taiwan_vd(files).load()
    backward = import_taiwan_vd(files[::-1]).load()
    np.testing.assert_array_equal(forward.values, backward.values)
    pd.testing.assert_frame_equal(forward.sensors, backward.sensors)


def test_ten_minute_interval(snapshots: Path):
    ds = import_taiwan_vd([snapshots], interval="10min").load()
    # 00:00-00:10 east: 7 minutes, all volumes complete -> 7 x 6 veh, scaled to 10 minutes
    assert ds.values[0, 0, 0] == pytest.approx(42 * 10 / 7)
    assert len(ds.timestamps) == 2


def _reference(
    spec: FeedSpec, minutes_per_interval: int = 5, min_coverage: float = 0.5
) -> tuple[list[str], np.ndarray]:
    """The expected dataset computed from the generated records with pandas, not the importer."""
    static = {vd.vdid: vd for vd in static_vds(spec)}
    live_to_static = {(f"{vdid[:-3]}-{int(vdid[-2:]):03d}" if spec.pad_live_ids else vdid): vdid for vdid in static}
    rows = []
    for snap in iter_snapshots(spec):
        for r in snap.readings:
            if r.vdid not in live_to_static:
                continue
            vd = static[live_to_static[r.vdid]]
            direction = next(link.direction for link in vd.links if link.link_id == r.link_id)
            for k, lane in enumerate(r.lanes):
                rows.append((f"{vd.vdid}:{direction}", r.collect_time, k, lane.speed, lane.occupancy, *lane.volumes))
    df = pd.DataFrame(rows, columns=["sensor", "t", "lane", "speed", "occ", "s", "l"]).drop_duplicates(
        ["sensor", "t", "lane"]
    )
    bad = {-99, -1, 255, 999}
    for col, high in [("speed", 200), ("occ", 100), ("s", np.inf), ("l", np.inf)]:
        df[col] = df[col].where(~df[col].isin(bad) & (df[col] >= 0) & (df[col] <= high))
    df["vol"] = df["s"] + df["l"]
    df["bucket"] = pd.to_datetime(df["t"], unit="s", utc=True).dt.floor(f"{minutes_per_interval}min")
    per_minute = df.groupby(["sensor", "bucket", "t"]).agg(
        vol=("vol", lambda v: v.sum() if v.notna().all() else np.nan)
    )
    flow = per_minute.groupby(["sensor", "bucket"])["vol"].agg(
        lambda v: v.mean() * minutes_per_interval if v.notna().sum() >= min_coverage * minutes_per_interval else np.nan
    )
    df["sv"] = df["speed"] * df["vol"]
    weighted = df.dropna(subset=["speed", "vol"]).groupby(["sensor", "bucket"]).agg(sv=("sv", "sum"), w=("vol", "sum"))
    plain = df.groupby(["sensor", "bucket"])["speed"].mean()
    speed = (weighted["sv"] / weighted["w"]).where(weighted["w"] > 0).reindex(plain.index).fillna(plain)
    occupancy = df.groupby(["sensor", "bucket"])["occ"].mean()
    table = pd.concat({"flow": flow, "speed": speed, "occupancy": occupancy}, axis=1)
    sensors = sorted(table.index.get_level_values(0).unique())
    grid = pd.date_range(
        table.index.get_level_values(1).min(), table.index.get_level_values(1).max(), freq=f"{minutes_per_interval}min"
    )
    cube = table.reindex(pd.MultiIndex.from_product([sensors, grid])).to_numpy().reshape(len(sensors), len(grid), 3)
    return sensors, cube.transpose(1, 0, 2)


QUIRKY = FeedSpec(
    n_vds=6,
    minutes=23,
    seed=3,
    bidirectional_share=0.5,
    sentinel_rate=0.08,
    duplicate_rate=0.2,
    skipped_minute_rate=0.15,
    pad_live_ids=True,
    unmatched_vds=2,
)


def test_matches_independent_reference_on_generated_feed(tmp_path: Path):
    ds = import_taiwan_vd([write_feed(tmp_path, QUIRKY)]).load()
    sensors, expected = _reference(QUIRKY)
    assert ds.sensor_ids == sensors
    np.testing.assert_allclose(ds.values, expected, rtol=1e-5, atol=1e-4)
    assert ds.meta["unmatched_live_records"] > 0
    assert ds.meta["import_counts"]["live_records_deduplicated"] > 0


def test_sparse_feed_spans_its_minutes_with_fewer_snapshots(tmp_path: Path):
    spec = FeedSpec(n_vds=3, minutes=60, every=7, seed=5, sentinel_rate=0.05)
    polls = [snap.poll_time for snap in iter_snapshots(spec)]
    assert len(polls) == 9 and set(np.diff(polls)) == {7 * 60}
    ds = import_taiwan_vd([write_feed(tmp_path, spec)]).load()
    sensors, expected = _reference(spec)
    assert ds.sensor_ids == sensors
    np.testing.assert_allclose(ds.values, expected, rtol=1e-5, atol=1e-4)
    assert ds.timestamps[-1] - ds.timestamps[0] == pd.Timedelta("55min")


def test_a_feed_polled_every_five_minutes_has_flow_only_below_the_default_coverage(tmp_path: Path, capsys):
    spec = FeedSpec(n_vds=3, minutes=60, every=5, seed=6, sentinel_rate=0.05)
    feed = write_feed(tmp_path / "feed", spec)
    out, sparse_out = tmp_path / "default", tmp_path / "sparse"
    assert main(["data", "import", "taiwan-vd", str(feed), "--out", str(out), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "feature 'flow' has no reading" in err and "data.features=[speed,occupancy]" in err
    assert "flow values are missing because their interval held a volume in fewer than 50% of its minutes" in err
    assert np.isnan(read_dataset(out).values[..., 0]).all()
    assert (
        main(
            [
                "data",
                "import",
                "taiwan-vd",
                str(feed),
                "--out",
                str(sparse_out),
                "--workers",
                "1",
                "--min-flow-coverage",
                "0.2",
            ]
        )
        == 0
    )
    assert capsys.readouterr().err == ""
    sparse = read_dataset(sparse_out)
    sensors, expected = _reference(spec, min_coverage=0.2)  # one minute's volume x 5
    assert sparse.sensor_ids == sensors and np.isfinite(sparse.values[..., 0]).mean() > 0.5
    np.testing.assert_allclose(sparse.values, expected, rtol=1e-5, atol=1e-4)
    assert "NaN below 20% of the minutes" in sparse.meta["aggregation"]["flow"]
    assert (
        main(["data", "import", "taiwan-vd", str(feed), "--out", str(tmp_path / "x"), "--min-flow-coverage", "0"]) == 2
    )
    assert "--min-flow-coverage: must be a share of the minutes in (0, 1], got 0.0" in capsys.readouterr().err


@pytest.mark.slow
def test_a_feed_polled_every_five_minutes_trains_exports_and_forecasts_from_the_cli(tmp_path: Path):
    """What a user of the Taiwan feed runs, with no graph or feature overrides: the import has
    no road graph and no mileage (the graph is each VD's nearest, upstream from the road
    order), and flow comes from one minute in five."""
    feed = write_feed(
        tmp_path / "feed", FeedSpec(n_vds=6, minutes=2 * 1440, every=5, seed=8, sentinel_rate=0.01, pack="zip")
    )
    data, run, bundle, forecast = (tmp_path / name for name in ("data", "run", "bundle", "forecast.csv"))
    assert (
        main(
            [
                "data",
                "import",
                "taiwan-vd",
                str(feed),
                "--out",
                str(data),
                "--min-flow-coverage",
                "0.2",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert read_dataset(data).edges is None
    assert main(tiny_train_args(data, run)) == 0
    graph = json.loads((run / "graph.json").read_text())
    assert graph["meta"]["config"]["method"] == "coordinates"
    assert {1, -1} <= set(graph["upstream"])  # road order gives each carriageway's up- and downstream
    assert main(["export", str(run), "--out", str(bundle)]) == 0  # checks its graphs against the run first
    assert main(["predict", str(bundle), "--data", str(data), "--out", str(forecast)]) == 0
    table = pd.read_csv(forecast)
    assert set(table.target) == {"flow", "speed"} and np.isfinite(table.forecast).all() and (table.forecast >= 0).all()
    assert len(table) == len(read_dataset(data).sensor_ids) * 12 * 2


@pytest.mark.parametrize("pack", ["zip", "7z"])
def test_archives_and_json_equal_xml_folders(tmp_path: Path, pack: str):
    folders = import_taiwan_vd([write_feed(tmp_path / "xml", QUIRKY)]).load()
    packed = import_taiwan_vd([write_feed(tmp_path / pack, replace(QUIRKY, fmt="json", pack=pack))]).load()
    np.testing.assert_array_equal(folders.values, packed.values)
    pd.testing.assert_frame_equal(folders.sensors, packed.sensors)
    assert folders.meta["import_counts"] == packed.meta["import_counts"]


def test_7z_named_zip_is_recognised_by_its_bytes(tmp_path: Path):
    archive = write_feed(tmp_path, replace(QUIRKY, pack="7z"))
    disguised = archive.rename(tmp_path / "batch.zip")
    assert import_taiwan_vd([disguised]).meta["import_counts"]["vdlivelist_files"] > 0


def test_unsupported_archive_is_a_clear_error(tmp_path: Path):
    bogus = tmp_path / "batch.zip"
    bogus.write_bytes(gzip.compress(VDLIST_V1.encode()))
    with pytest.raises(InputError, match=r"batch\.zip: gzip archive is not supported; repack it as zip or 7z"):
        import_taiwan_vd([bogus])


def test_live_without_static_is_a_clear_error(tmp_path: Path):
    live = tmp_path / "VDLiveList.xml"
    live.write_text(live_minute(0), encoding="utf-8")
    with pytest.raises(InputError, match="no VDList"):
        import_taiwan_vd([live])


def test_bad_number_names_file_and_field(snapshots: Path):
    live = snapshots / "2025-03-18_00-03-40" / "VDLiveList.xml"
    live.write_text(
        live.read_text(encoding="utf-8").replace("<Speed>70.0</Speed>", "<Speed>fast</Speed>"), encoding="utf-8"
    )
    with pytest.raises(
        InputError, match=r"VDLiveList\.xml: VDLive VD-11-0020-008-01: field Speed is 'fast', expected a number"
    ):
        import_taiwan_vd([snapshots])


def test_cli_imports_and_writes_a_readable_dataset(snapshots: Path, tmp_path: Path):
    out = tmp_path / "taiwan"
    assert (
        main(["data", "import", "taiwan-vd", str(snapshots), "--out", str(out), "--name", "thb", "--workers", "1"]) == 0
    )
    ds = read_dataset(out)
    np.testing.assert_allclose(ds.values, EXPECTED, rtol=1e-6)
    assert ds.meta["name"] == "thb" and ds.meta["units"]["flow"] == "veh/interval"
    assert ds.sensors["road_name"].tolist() == ["臺2線"] * 3


def test_progress_is_reported_after_every_file_with_the_counts_so_far(snapshots: Path):
    calls = []
    ds = import_taiwan_vd(
        [snapshots],
        workers=1,
        progress=lambda name, tally: calls.append((name, tally["live_records_read"], tally["identical_files_skipped"])),
    )
    files = [f"{snapshots}/{path.relative_to(snapshots).as_posix()}" for path in sorted(snapshots.rglob("*.xml"))]
    assert [name for name, _, _ in calls] == files  # the README is skipped, not reported
    records = [read for _, read, _ in calls]
    assert records == sorted(records) and records[0] == 0 and records[1] > 0  # a VDList, then its live readings
    counts = ds.meta["import_counts"]
    assert calls[-1][1:] == (counts["live_records_read"], counts["identical_files_skipped"])


def test_cli_malformed_xml_exits_2_with_one_line_and_no_output(snapshots: Path, tmp_path: Path, capsys):
    broken = snapshots / "2025-03-18_00-04-40" / "VDLiveList.xml"
    broken.write_text(live_minute(4)[:-40], encoding="utf-8")
    out = tmp_path / "taiwan"
    assert main(["data", "import", "taiwan-vd", str(snapshots), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2025-03-18_00-04-40/VDLiveList.xml" in err and "malformed XML" in err
    assert not out.exists() and not any(p.name.startswith(".taiwan") for p in tmp_path.iterdir())


def test_streamed_parsing_of_big_files_equals_whole_file_parsing(snapshots: Path, monkeypatch):
    whole = import_taiwan_vd([snapshots]).load()
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.WHOLE_FILE_BYTES", 0)
    streamed = import_taiwan_vd([snapshots]).load()
    np.testing.assert_array_equal(whole.values, streamed.values)
    pd.testing.assert_frame_equal(whole.sensors, streamed.sensors)
    assert streamed.meta["import_counts"]["vdlist_versions"] == 9  # streamed files are not hashed


@pytest.mark.parametrize("chunk_bytes", [1, 7, 1000])
def test_chunk_boundaries_anywhere_give_the_same_dataset(snapshots: Path, monkeypatch, chunk_bytes: int):
    default = import_taiwan_vd([snapshots]).load()
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.xml_records.CHUNK_BYTES", chunk_bytes)
    chunked = import_taiwan_vd([snapshots]).load()
    np.testing.assert_array_equal(default.values, chunked.values)
    assert default.meta["import_counts"] == chunked.meta["import_counts"]


def test_documents_without_the_namespace_read_the_same_and_foreign_elements_are_ignored(snapshots: Path):
    standard = import_taiwan_vd([snapshots]).load()
    for file in snapshots.rglob("*.xml"):
        text = file.read_text(encoding="utf-8").replace(f' xmlns="{NS}"', "")
        # a vendor's extra element that happens to share a field's local name
        text = text.replace("<Speed>", '<x:Speed xmlns:x="urn:vendor">999</x:Speed><Speed>')
        file.write_text(text, encoding="utf-8")
    stripped = import_taiwan_vd([snapshots]).load()
    np.testing.assert_array_equal(standard.values, stripped.values)
    pd.testing.assert_frame_equal(standard.sensors, stripped.sensors)


def test_unknown_link_of_known_detector_is_counted_not_mixed_in(snapshots: Path):
    extra = snapshots / "2025-03-18_00-07-40"
    extra.mkdir()
    (extra / "VDLiveList.xml").write_text(
        vdlivelist(7, [vdlive("VD-11-0020-008-01", 7, {"3000200000999T": [(30.0, 50.0, 9, 9)]})]), encoding="utf-8"
    )
    ds = import_taiwan_vd([snapshots]).load()
    assert ds.meta["import_counts"]["live_records_unmatched_link"] == 1
    np.testing.assert_allclose(ds.values, EXPECTED, rtol=1e-6)


BILLION_LAUGHS = '<!DOCTYPE VDList [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
EXTERNAL_ENTITY = '<!DOCTYPE VDList [<!ENTITY secret SYSTEM "file:///etc/hostname">]>'
EXTERNAL_DTD = '<!DOCTYPE VDList SYSTEM "http://example.org/vd.dtd">'


@pytest.mark.parametrize("chunk_bytes", [1, 65536])
@pytest.mark.parametrize(
    "doctype",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD],
    ids=["billion-laughs", "external-entity", "external-dtd"],
)
def test_document_type_declarations_are_refused(tmp_path: Path, monkeypatch, doctype: str, chunk_bytes: int):
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.xml_records.CHUNK_BYTES", chunk_bytes)
    entity = "&b;" if "ENTITY b" in doctype else "&secret;" if "secret" in doctype else ""
    bomb = tmp_path / "VDList.xml"
    bomb.write_text(f'<?xml version="1.0"?>{doctype}<VDList xmlns="{NS}"><UpdateTime>{entity}</UpdateTime></VDList>')
    with pytest.raises(InputError, match=r"VDList\.xml: has a DOCTYPE declaration, expected none"):
        import_taiwan_vd([bomb])


def test_foreign_root_is_refused(tmp_path: Path):
    other = tmp_path / "CCTVList.xml"
    other.write_text(f'<CCTVList xmlns="{NS}"><CCTVs/></CCTVList>')
    with pytest.raises(InputError, match="root element is .*CCTVList.*expected VDList or VDLiveList"):
        import_taiwan_vd([other])


@pytest.mark.parametrize("interval", ["90s", "soon", "-5min"])
def test_interval_must_be_whole_minutes(snapshots: Path, interval: str):
    with pytest.raises(InputError, match="--interval"):
        import_taiwan_vd([snapshots], interval=interval)


def test_record_with_faulty_clock_is_dropped_not_gridded(snapshots: Path):
    extra = snapshots / "2025-03-18_00-08-40"
    extra.mkdir()
    faulty = vdlive("VD-11-0020-008-01", 8, {"3000200000180F": [(70.0, 3.0, 2, 0)]}).replace(
        "2025-03-18T00:08:20", "1970-01-01T00:00:00"
    )
    (extra / "VDLiveList.xml").write_text(vdlivelist(8, [faulty]), encoding="utf-8")
    ds = import_taiwan_vd([snapshots]).load()
    assert ds.meta["import_counts"]["live_records_implausible_time"] == 1
    np.testing.assert_allclose(ds.values, EXPECTED, rtol=1e-6)


def test_worker_processes_give_the_same_dataset(tmp_path: Path, monkeypatch):
    feed = write_feed(tmp_path, QUIRKY)
    serial = import_taiwan_vd([feed], workers=1).load()
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.summaries.PARALLEL_AFTER_DOCUMENTS", 0)
    pooled = import_taiwan_vd([feed], workers=2).load()
    np.testing.assert_array_equal(serial.values, pooled.values)
    pd.testing.assert_frame_equal(serial.sensors, pooled.sensors)
    assert serial.meta == pooled.meta


def test_worker_errors_arrive_as_input_errors(snapshots: Path, monkeypatch):
    broken = snapshots / "2025-03-18_00-04-40" / "VDLiveList.xml"
    broken.write_text(live_minute(4).replace("<DataCollectTime>", "<DataCollectTime>x"), encoding="utf-8")
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.summaries.PARALLEL_AFTER_DOCUMENTS", 0)
    with pytest.raises(InputError, match=r"00-04-40/VDLiveList\.xml: VDLive .*: field DataCollectTime is 'x2025"):
        import_taiwan_vd([snapshots], workers=2)


@pytest.mark.parametrize("pack", ["zip", "7z"])
def test_corrupt_archive_is_a_clear_error(tmp_path: Path, pack: str):
    archive = write_feed(tmp_path, replace(QUIRKY, minutes=3, pack=pack))
    data = archive.read_bytes()
    archive.write_bytes(data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])
    with pytest.raises(InputError, match=rf"feed\.{pack}.*unreadable"):
        import_taiwan_vd([archive])


@pytest.mark.parametrize(
    "buckets_per_block, steps_per_chunk, chunk_lengths",
    [
        (1, 100, [1, 1, 1, 1]),
        (2, 100, [2, 2]),
        (3, 100, [3, 1]),
        (3, 2, [2, 1, 1]),
        (512, 1, [1, 1, 1, 1]),
    ],
)
def test_grid_spanning_many_blocks_equals_one_block(
    snapshots: Path, monkeypatch, buckets_per_block: int, steps_per_chunk: int, chunk_lengths: list[int]
):
    """Blocks of 1-3 intervals or one of 512, written a block at a time, or in chunks of fewer steps."""
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.accumulate.BUCKETS_PER_BLOCK", buckets_per_block)
    monkeypatch.setattr("social_xlstm.data.readings_table.ROWS_PER_GROUP", 3 * steps_per_chunk)  # 3 sensors
    stream = import_taiwan_vd([snapshots])
    assert [len(stamps) for stamps, _ in stream.chunks()] == chunk_lengths
    ds = stream.load()
    np.testing.assert_allclose(ds.values, EXPECTED, rtol=1e-6)
    assert len(ds.timestamps) == 4


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_blocks_spilled_to_disk_give_the_same_dataset(snapshots: Path, tmp_path: Path, monkeypatch, order: str):
    """One block in memory, one interval or two minutes per block: nearly every file spills and reloads."""
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.accumulate.BUCKETS_PER_BLOCK", 1)
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.dedup.MINUTES_PER_BLOCK", 2)
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.blocks.MAX_COLLECT_LAG_S", 0)  # resident: 1 block
    spills = []
    spill = RowBlocks._spill
    monkeypatch.setattr(RowBlocks, "_spill", lambda self, key, block: (spills.append(key), spill(self, key, block)))
    files = sorted(snapshots.rglob("*.xml"))
    stream = import_taiwan_vd(files if order == "forward" else files[::-1])
    assert len(spills) >= 5  # 4 interval blocks and 3 or more two-minute blocks, all but the newest of each spilled
    ds = stream.load()
    np.testing.assert_allclose(ds.values, EXPECTED, rtol=1e-6)
    assert ds.meta["import_counts"]["live_records_deduplicated"] == 4
    write_dataset(stream, tmp_path / "out")  # the chunks can be read a second time
    np.testing.assert_allclose(read_dataset(tmp_path / "out").values, EXPECTED, rtol=1e-6)


@pytest.mark.parametrize("block_seconds, resident", [(30720, 4), (153600, 2), (86400, 2), (86401, 2), (86399, 3)])
def test_resident_blocks_cover_the_longest_lag_behind_the_newest(block_seconds: int, resident: int):
    """512 one-minute or five-minute intervals, a day of minutes, and either side of a day."""
    assert resident_blocks(block_seconds) == resident


def test_cli_spills_beside_the_output_and_leaves_nothing_there(snapshots: Path, tmp_path: Path, monkeypatch):
    """Not in /tmp, which is memory where it is a tmpfs: on the disk that will hold the dataset."""
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.accumulate.BUCKETS_PER_BLOCK", 1)
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.blocks.MAX_COLLECT_LAG_S", 0)
    folders = set()
    spill = RowBlocks._spill
    monkeypatch.setattr(
        RowBlocks,
        "_spill",
        lambda self, key, block: (spill(self, key, block), folders.add(Path(self._spill_dir.name).parent)),
    )
    out = tmp_path / "datasets" / "taiwan"
    out.parent.mkdir()
    assert main(["data", "import", "taiwan-vd", str(snapshots), "--out", str(out)]) == 0
    assert folders == {out.parent}
    assert [p.name for p in out.parent.iterdir()] == ["taiwan"]
    np.testing.assert_allclose(read_dataset(out).values, EXPECTED, rtol=1e-6)


def test_row_blocks_keep_every_update_through_spills_and_growth():
    """Random updates against one dense array, with rows added while blocks are on disk."""
    rng = np.random.default_rng(3)
    blocks = RowBlocks(planes=2, block_len=5, dtype=np.float32, resident=2)
    dense = np.zeros((2, 300, 40), dtype=np.float32)
    for step in range(400):
        row, column = int(rng.integers(0, 40 + step // 2)), int(rng.integers(0, 40))
        blocks.ensure_rows(row + 1)
        key, slot = divmod(column, 5)
        blocks.block(key)[:, row, slot] += step
        dense[:, row, column] += step
    assert blocks.rows == 256 and blocks.keys() == list(range(8))
    for key in blocks.keys():
        np.testing.assert_array_equal(blocks.read(key), dense[:, :256, key * 5 : key * 5 + 5])


# --- bounds on what a document or an archive may cost (memory, disk), whatever its content ---

SOURCES = "social_xlstm.data.importers.taiwan_vd.sources"
XML = "social_xlstm.data.importers.taiwan_vd.xml_records"


@pytest.mark.parametrize("pack", ["zip", "7z"])
def test_an_archive_member_larger_than_the_bound_is_refused_naming_it(tmp_path: Path, monkeypatch, pack: str):
    archive = write_feed(tmp_path / "in", replace(QUIRKY, minutes=3, pack=pack))
    monkeypatch.setattr(f"{SOURCES}.MAX_MEMBER_BYTES", 2000)  # each VDLiveList here is more
    with pytest.raises(
        InputError, match=rf"feed\.{pack}:2025-03-18_00-0\d-40/VD\w+\.xml: unpacks to \d+ bytes, more than the 2000"
    ):
        import_taiwan_vd([archive], spill_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["in"]  # nothing unpacked was left


def test_a_7z_archive_unpacking_to_more_than_the_bound_is_refused_before_it_is_unpacked(tmp_path: Path, monkeypatch):
    archive = write_feed(tmp_path / "in", replace(QUIRKY, minutes=3, pack="7z"))
    written = []
    monkeypatch.setattr("py7zr.SevenZipFile.extractall", lambda self, *a, **k: written.append(a))
    with pytest.raises(InputError, match=r"feed\.7z: unpacks to \d+ bytes in all, more than the 5000 bytes allowed"):
        import_taiwan_vd([archive], spill_dir=tmp_path, max_unpacked_bytes=5000)
    assert not written and [p.name for p in tmp_path.iterdir()] == ["in"]


def test_a_7z_archive_whose_headers_understate_its_size_is_stopped_while_unpacking(tmp_path: Path, monkeypatch):
    archive = write_feed(tmp_path / "in", replace(QUIRKY, minutes=3, pack="7z"))
    listed = py7zr.SevenZipFile.list
    monkeypatch.setattr(py7zr.SevenZipFile, "list", lambda self: [replace(f, uncompressed=1) for f in listed(self)])
    with pytest.raises(InputError, match=r"feed\.7z: unpacks to more than the 5000 bytes allowed"):
        import_taiwan_vd([archive], spill_dir=tmp_path, max_unpacked_bytes=5000)
    assert [p.name for p in tmp_path.iterdir()] == ["in"]


def test_the_cli_unpacks_7z_beside_the_output_and_removes_it(tmp_path: Path, monkeypatch):
    """Not in /tmp (memory where it is a tmpfs): on the disk that will hold the dataset."""
    archive = write_feed(tmp_path / "in", replace(QUIRKY, minutes=5, pack="7z"))
    unpacked_in = []
    walk = sources._iter_folder

    def spy(folder: Path, *args, **kwargs):
        unpacked_in.append((folder.parent, sorted(p.name for p in folder.iterdir())))
        yield from walk(folder, *args, **kwargs)

    monkeypatch.setattr(f"{SOURCES}._iter_folder", spy)
    out = tmp_path / "datasets" / "taiwan"
    out.parent.mkdir()
    assert main(["data", "import", "taiwan-vd", str(archive), "--out", str(out), "--workers", "1"]) == 0
    assert unpacked_in == [(out.parent, [snap.folder for snap in iter_snapshots(replace(QUIRKY, minutes=5))])]
    assert [p.name for p in out.parent.iterdir()] == ["taiwan"]
    assert main(["data", "import", "taiwan-vd", str(archive), "--out", str(out), "--max-unpacked-gib", "1e-6"]) == 2


def test_a_run_of_text_longer_than_the_bound_is_refused_not_held(snapshots: Path, monkeypatch):
    """A megabyte of blanks between two elements (a 1 MB zip held 1 GiB of them): refused once past the bound."""
    monkeypatch.setattr(f"{XML}.MAX_TEXT_BYTES", 100_000)
    live = snapshots / "2025-03-18_00-04-40" / "VDLiveList.xml"
    live.write_text(live_minute(4).replace("<VDLives>", "<VDLives>" + " " * 2**20), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"00-04-40/VDLiveList\.xml: more than 100000 bytes of text, a comment or a tag at byte \d+"
    ):
        import_taiwan_vd([snapshots])


@pytest.mark.parametrize("where", ["root", "records"])
def test_elements_read_are_let_go_so_memory_follows_no_document(tmp_path: Path, where: str):
    """A 33 KB zip of 8 million empty sibling elements took 925 MB: here 200,000 under the root or among the
    records cost no more than a few chunks of the document (a record is bounded on its own)."""
    empty = "<Foreign/>" * 200_000
    document = vdlivelist(0, [vdlive("VD-11-0020-008-01", 0, {"3000200000180F": [(1.0, 1.0, 1, 1)]})] * 3)
    if where == "root":
        document = document.replace("<UpdateInterval>", empty + "<UpdateInterval>")
    elif where == "records":
        document = document.replace("</VDLive><VDLive>", "</VDLive>" + empty + "<VDLive>")
    path = tmp_path / "VDLiveList.xml"
    path.write_text(document, encoding="utf-8")
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            feed = read_xml(path.name, stream)
            readings = list(feed.records)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(readings) == 3 and feed.update_time is not None
    assert peak < 6 * 2**20, f"{peak / 2**20:.1f} MiB for a {len(document) / 2**20:.1f} MiB document"


def test_a_record_larger_than_the_bound_is_refused(snapshots: Path, monkeypatch):
    monkeypatch.setattr(f"{XML}.MAX_RECORD_BYTES", 5000)
    monkeypatch.setattr(f"{XML}.CHUNK_BYTES", 1000)  # the bound is checked a chunk at a time
    live = snapshots / "2025-03-18_00-04-40" / "VDLiveList.xml"
    live.write_text(live_minute(4).replace("<Status>", "<Foreign/>" * 1000 + "<Status>", 1), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"00-04-40/VDLiveList\.xml: a VDLive longer than 5000 bytes \(from about byte \d+\)"
    ):
        import_taiwan_vd([snapshots])


def test_elements_nested_deeper_than_the_feed_are_refused(tmp_path: Path):
    path = tmp_path / "VDLiveList.xml"
    path.write_text(
        f'<VDLiveList xmlns="{NS}"><VDLives>' + "<a>" * 100_000 + "</a>" * 100_000 + "</VDLives></VDLiveList>"
    )
    with pytest.raises(InputError, match=r"VDLiveList\.xml: elements nested more than 32 deep at byte \d+"):
        import_taiwan_vd([path])


def test_a_json_document_larger_than_the_bound_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.json_records.MAX_JSON_BYTES", 2000)
    feed = write_feed(tmp_path / "feed", replace(QUIRKY, minutes=2, fmt="json"))
    with pytest.raises(InputError, match=r"/VD\w+\.json: JSON document larger than 2000 bytes \(it is read whole\)"):
        import_taiwan_vd([feed], workers=1)
    monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.WHOLE_FILE_BYTES", 0)  # read as a stream
    with pytest.raises(InputError, match=r"/VD\w+\.json: JSON document larger than 2000 bytes \(it is read whole\)"):
        import_taiwan_vd([feed], workers=1)


@pytest.mark.parametrize("form", ["json", "json-in-worker"])
def test_json_nested_too_deeply_is_a_one_line_error(snapshots: Path, tmp_path: Path, monkeypatch, capsys, form: str):
    deep = snapshots / "2025-03-18_00-04-40" / "VDLiveList.json"
    deep.write_text('{"VDLives": ' + "[" * 100_000 + "]" * 100_000 + "}")
    if form == "json-in-worker":
        monkeypatch.setattr("social_xlstm.data.importers.taiwan_vd.summaries.PARALLEL_AFTER_DOCUMENTS", 0)
    out = tmp_path / "taiwan"
    assert main(["data", "import", "taiwan-vd", str(snapshots), "--out", str(out), "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "00-04-40/VDLiveList.json: JSON nested deeper than" in err
    assert not out.exists()


@pytest.mark.parametrize("small, large", [("1e308", "1e308"), ("1e400", "0"), ("Infinity", "0"), ("1e9", "1")])
def test_record_with_an_impossible_volume_is_dropped_and_counted(snapshots: Path, small: str, large: str):
    """Two volumes of 1e308 overflowed the sum and stopped the import; a volume no lane can carry is dropped."""
    extra = snapshots / "2025-03-18_00-08-40"
    extra.mkdir()
    record = vdlive("VD-11-0020-008-01", 8, {"3000200000180F": [(70.0, 3.0, "S", "L")]})
    record = record.replace(">S<", f">{small}<").replace(">L<", f">{large}<")
    (extra / "VDLiveList.xml").write_text(vdlivelist(8, [record]), encoding="utf-8")
    ds = import_taiwan_vd([snapshots]).load()
    assert ds.meta["import_counts"]["live_records_implausible_volume"] == 1
    np.testing.assert_allclose(ds.values, EXPECTED, rtol=1e-6)


def test_json_record_with_an_infinite_volume_is_dropped_and_counted(tmp_path: Path):
    feed = write_feed(tmp_path / "feed", replace(QUIRKY, minutes=2, fmt="json", sentinel_rate=0))
    live = sorted(feed.rglob("VDLiveList.json"))[-1]
    live.write_text(re.sub(r'"Volume": \d+', '"Volume": 1e999', live.read_text(), count=1))
    ds = import_taiwan_vd([feed]).load()
    assert ds.meta["import_counts"]["live_records_implausible_volume"] == 1


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie that nobody reaped yet is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize(
    "stop, code, said",
    [
        (lambda process: process.send_signal(signal.SIGTERM), 143, "stopped by SIGTERM"),
        # Ctrl-C in a terminal signals the whole process group, the workers too
        (lambda process: os.killpg(process.pid, signal.SIGINT), 130, "interrupted (Ctrl-C)"),
    ],
    ids=["SIGTERM", "Ctrl-C"],
)
def test_a_stopped_import_ends_its_workers_removes_the_spill_folder_and_says_so(tmp_path: Path, stop, code, said):
    """The default action of SIGTERM killed the command where it stood: its workers lived on (holding the
    caller's stdout) and its spill folder stayed; Ctrl-C printed a traceback per process. The input ends
    with a pipe nobody writes: the import waits there with its workers started and its sums of past days
    on disk, until the signal comes."""
    feed = write_feed(tmp_path / "feed", FeedSpec(n_vds=3, minutes=4 * 1440, every=60, seed=9))
    stall = tmp_path / "stall.xml"
    os.mkfifo(stall)
    out = tmp_path / "datasets" / "taiwan"
    out.parent.mkdir()
    command = [sys.executable, "-m", "social_xlstm.cli", "data", "import", "taiwan-vd", str(feed), str(stall)]
    with (tmp_path / "stdout").open("wb") as stdout, (tmp_path / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "--out", str(out), "--workers", "2"], stdout=stdout, stderr=stderr, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            workers = [pid for pid in _children(process.pid) if "spawn_main" in _cmdline(pid)]
            spilled = [p for p in out.parent.iterdir() if p.name.startswith(".social-xlstm-import-")]
            if len(workers) == 2 and spilled:
                break
            assert process.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline, "the import never started its workers and spilled"
            time.sleep(0.05)
        time.sleep(0.5)  # the last documents reach the workers; the import waits on the pipe
        stop(process)
        assert process.wait(timeout=60) == code
        err = (tmp_path / "stderr").read_text().strip()
        assert len(err.splitlines()) == 1 and said in err, err
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, workers)), [_cmdline(pid) for pid in workers if _alive(pid)]
        assert list(out.parent.iterdir()) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # only if the test failed: the command and what it left running
        process.wait(timeout=60)


@pytest.mark.parametrize(
    "replace, column",
    [
        (("<LaneNum>2</LaneNum>", "<LaneNum>inf</LaneNum>"), "lanes"),
        (("<LaneNum>2</LaneNum>", "<LaneNum>255</LaneNum>"), "lanes"),
        (("<LaneNum>2</LaneNum>", "<LaneNum>1e30</LaneNum>"), "lanes"),
        (("<PositionLat>25.149709</PositionLat>", "<PositionLat>95.1</PositionLat>"), "latitude"),
    ],
)
def test_a_static_field_no_road_has_is_unknown(snapshots: Path, replace, column):
    """An infinite lane count ended in a traceback and a latitude of 95.1 was kept: each is unknown
    now (as a sentinel reading is missing), the other detectors' fields as they were."""
    expected = import_taiwan_vd([snapshots]).sensors
    for listing in snapshots.rglob("VDList.xml"):
        listing.write_text(listing.read_text(encoding="utf-8").replace(*replace, 1), encoding="utf-8")
    got = import_taiwan_vd([snapshots]).sensors
    changed = got[column].isna() & expected[column].notna()
    assert changed.sum() >= 1
    pd.testing.assert_frame_equal(got[~changed], expected[~changed])


def test_a_feed_in_a_multi_byte_encoding_other_than_utf8_is_refused(tmp_path: Path):
    big5 = tmp_path / "VDList.xml"
    big5.write_bytes(f'<?xml version="1.0" encoding="Big5"?><VDList xmlns="{NS}"><VDs/></VDList>'.encode())
    with pytest.raises(InputError, match=r"VDList\.xml: .*expected UTF-8 XML"):
        import_taiwan_vd([big5])


def test_live_lists_without_a_reading_are_refused(snapshots: Path):
    """Every VDLiveList empty: ``next`` over no rows raised StopIteration (a traceback)."""
    for live in snapshots.rglob("VDLiveList.xml"):
        live.write_text(f'<VDLiveList xmlns="{NS}"><VDLives/></VDLiveList>', encoding="utf-8")
    with pytest.raises(InputError, match="no live reading in the VDLiveList files"):
        import_taiwan_vd([snapshots])


def test_readings_spanning_more_than_the_bound_are_refused_naming_the_span(snapshots: Path, monkeypatch):
    """One snapshot folder of ten years before (its own times consistent) made the grid ten years
    long (1 M steps: with 1,500 VDs a 19 GB array to train on), without a word. A grid as large
    but mostly filled is a long feed, and is imported."""
    import social_xlstm.data.importers.taiwan_vd as taiwan_vd

    earlier = snapshots / "2015-03-18_00-03-40"
    shutil.copytree(snapshots / "2025-03-18_00-03-40", earlier)
    for name in ("VDList.xml", "VDLiveList.xml"):
        text = (earlier / name).read_text(encoding="utf-8")
        (earlier / name).write_text(text.replace("2025-03-18", "2015-03-18"), encoding="utf-8")
    monkeypatch.setattr(taiwan_vd, "MAX_GRID_VALUES", 1_000_000)  # ten years of 5-minute steps: 9.5 M values
    with pytest.raises(
        InputError,
        match=r"readings from 2015-03-18 00:00:00\+08:00 to 2025-03-18 00:15:00\+08:00 fill 4 of its 1,052,068",
    ):
        import_taiwan_vd([snapshots])
    shutil.rmtree(earlier)  # the feed alone: a grid past the bound too, but full, so a long feed: imported
    monkeypatch.setattr(taiwan_vd, "MAX_GRID_VALUES", 10)
    assert len(import_taiwan_vd([snapshots]).sensors) == 3
