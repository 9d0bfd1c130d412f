"""Synthetic VD feeds in the published layout, deterministic from a seed (a test fixture, also
used by scripts/bench_taiwan_import.py; not part of the package).

Tests and the throughput benchmark need snapshots that look like a collector's archive:
``YYYY-MM-DD_HH-MM-SS/{VDList,VDLiveList}.{xml,json}`` folders, optionally packed into one zip
or 7z file, with the quirks of real archives switched on at will: both directions on some
detectors, sentinel values, repeated records, skipped minutes, differently padded VDIDs and
live detectors that no VDList knows. ``iter_snapshots`` yields exactly what ``write_feed``
writes, so a test can compute the expected dataset from it independently of the importer.
"""

from __future__ import annotations

import itertools
import json
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Iterator, Literal
from xml.sax.saxutils import escape

import numpy as np
import py7zr

from social_xlstm.data.importers.taiwan_vd.quality import SENTINELS
from social_xlstm.data.importers.taiwan_vd.records import (
    FEED_OFFSET,
    NAMESPACE,
    DetectionLink,
    Lane,
    LinkReading,
    StaticVD,
)

_SENTINEL_CHOICES = np.array(sorted(SENTINELS))
_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<{root} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="{NAMESPACE}">\n'
    "  <UpdateTime>{update}</UpdateTime>\n  <UpdateInterval>{every}</UpdateInterval>\n"
    "  <AuthorityCode>THB</AuthorityCode>\n"
)


@dataclass(frozen=True)
class FeedSpec:
    n_vds: int = 10
    minutes: int = 30  # the span the feed covers
    every: int = 1  # minutes between snapshots: a sparse feed spans a month in few files
    start: str = "2025-03-18T00:00:00+08:00"
    seed: int = 0
    bidirectional_share: float = 0.3  # detectors that report both directions
    sentinel_rate: float = 0.0  # chance that a speed, occupancy or volume is a sentinel
    duplicate_rate: float = 0.0  # chance a detector repeats its previous record (its new minute is lost)
    skipped_minute_rate: float = 0.0  # chance that no snapshot was taken in a minute
    pad_live_ids: bool = False  # live VDIDs pad the last field to 3 digits, the VDList to 2
    unmatched_vds: int = 0  # live-only detectors that no VDList knows
    fmt: Literal["xml", "json"] = "xml"
    pack: Literal[None, "zip", "7z"] = None


@dataclass(frozen=True)
class Snapshot:
    folder: str
    poll_time: int
    vdlist_update_time: int
    vds: tuple[StaticVD, ...]
    readings: tuple[LinkReading, ...]


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, FEED_OFFSET).isoformat()


def static_vds(spec: FeedSpec) -> tuple[StaticVD, ...]:
    rng = np.random.default_rng([spec.seed, 1])
    vds = []
    for i in range(spec.n_vds):
        directions = ("E", "W") if rng.random() < spec.bidirectional_share else ("E",)
        links = tuple(
            DetectionLink(
                link_id=f"300020{i:07d}{'F' if d == 'E' else 'T'}", direction=d, lanes=int(rng.integers(2, 5))
            )
            for d in directions
        )
        vds.append(
            StaticVD(
                vdid=f"VD-11-0020-{i:03d}-01",
                links=links,
                longitude=round(121.40 + 0.004 * i + float(rng.normal(0, 0.0005)), 6),
                latitude=round(25.00 + 0.003 * i + float(rng.normal(0, 0.0005)), 6),
                road_id="300020",
                road_name="臺2線",
            )
        )
    return tuple(vds)


def _live_vdid(vdid: str, pad: bool) -> str:
    head, last = vdid.rsplit("-", 1)
    return f"{head}-{int(last):03d}" if pad else vdid


def iter_snapshots(spec: FeedSpec) -> Iterator[Snapshot]:
    """The snapshots of the feed, every ``spec.every`` minutes (skipped minutes yield nothing)."""
    rng = np.random.default_rng([spec.seed, 2])
    vds = static_vds(spec)
    live_only = tuple(
        replace(vd, vdid=f"VD-99-9999-{k:03d}-01")
        for k, vd in enumerate(static_vds(replace(spec, n_vds=spec.unmatched_vds, seed=spec.seed + 1)))
    )
    start = int(datetime.fromisoformat(spec.start).timestamp())
    update_time = start - start % 86400 - 8 * 3600 + 46 * 60  # 00:46 local, as the THB feed does
    second_of = rng.integers(0, 30, size=len(vds) + len(live_only))
    previous: dict[str, tuple[LinkReading, ...]] = {}
    if spec.every < 1:
        raise ValueError(f"FeedSpec.every must be at least 1 minute, got {spec.every}")
    reporting = vds + live_only
    n_lanes = sum(link.lanes for vd in reporting for link in vd.links)
    for minute in range(0, spec.minutes, spec.every):
        minute_start = start + 60 * minute
        lanes = iter(_minute_lanes(rng, spec.sentinel_rate, n_lanes))
        fresh = {
            vd.vdid: _vd_readings(spec, vd, minute_start + int(second_of[k]), lanes) for k, vd in enumerate(reporting)
        }
        if rng.random() < spec.skipped_minute_rate:
            previous = fresh
            continue
        readings = []
        for vdid, records in fresh.items():
            if vdid in previous and rng.random() < spec.duplicate_rate:
                records = previous[vdid]
            readings.extend(records)
            fresh[vdid] = records
        previous = fresh
        poll = minute_start + 40
        yield Snapshot(
            datetime.fromtimestamp(poll, FEED_OFFSET).strftime("%Y-%m-%d_%H-%M-%S"),
            poll,
            update_time,
            vds,
            tuple(readings),
        )


def _minute_lanes(rng: np.random.Generator, sentinel_rate: float, n_lanes: int) -> list[Lane]:
    """A minute of every lane of the feed, drawn at once (drawing per lane made the generator slower than
    the importer)."""
    small, large = rng.poisson(6, n_lanes), rng.poisson(1, n_lanes)
    total = small + large
    speed = np.where(total == 0, 0.0, np.round(np.clip(rng.normal(88 - 1.5 * total, 6), 5, 130), 1))
    occupancy = np.where(total == 0, 0.0, np.round(np.minimum(100.0, 1.6 * total + rng.uniform(0, 2, n_lanes)), 1))
    values = np.column_stack([speed, occupancy, small, large])  # float64: the int counts are promoted
    hits = rng.random(values.shape) < sentinel_rate
    values[hits] = rng.choice(_SENTINEL_CHOICES, size=int(hits.sum()))
    return [Lane(speed=s, occupancy=o, volumes=(v_small, v_large)) for s, o, v_small, v_large in values.tolist()]


def _vd_readings(spec: FeedSpec, vd: StaticVD, collect_time: int, lanes: Iterator[Lane]) -> tuple[LinkReading, ...]:
    """The detector's LinkFlows, taking its lanes' values in order from the minute's draw."""
    vdid = vd.vdid if vd.vdid.startswith("VD-99") else _live_vdid(vd.vdid, spec.pad_live_ids)
    return tuple(
        LinkReading(vdid, link.link_id, collect_time, tuple(itertools.islice(lanes, link.lanes))) for link in vd.links
    )


def _number(value: float, decimals: int) -> str:
    return str(int(value)) if value in SENTINELS else f"{value:.{decimals}f}"


def vdlist_xml(update_time: int, vds: tuple[StaticVD, ...]) -> bytes:
    parts = [_HEAD.format(root="VDList", update=_iso(update_time), every=86400), "  <VDs>\n"]
    for vd in vds:
        parts.append(
            f"    <VD>\n      <VDID>{escape(vd.vdid)}</VDID>\n      <SubAuthorityCode>THB-NE</SubAuthorityCode>\n"
            f"      <BiDirectional>{int(len(vd.links) > 1)}</BiDirectional>\n      <DetectionLinks>\n"
        )
        for link in vd.links:
            parts.append(
                f"        <DetectionLink>\n          <LinkID>{escape(link.link_id)}</LinkID>\n"
                f"          <RoadDirection>{link.direction}</RoadDirection>\n"
                f"          <LaneNum>{link.lanes}</LaneNum>\n        </DetectionLink>\n"
            )
        parts.append(
            f"      </DetectionLinks>\n      <PositionLon>{vd.longitude}</PositionLon>\n"
            f"      <PositionLat>{vd.latitude}</PositionLat>\n"
            f"      <RoadID>{escape(vd.road_id)}</RoadID>\n      <RoadName>{escape(vd.road_name)}</RoadName>\n"
            "      <RoadClass>3</RoadClass>\n      <DetectionType>5</DetectionType>\n    </VD>\n"
        )
    parts.append("  </VDs>\n</VDList>\n")
    return "".join(parts).encode("utf-8")


def _grouped(readings: tuple[LinkReading, ...]):
    """One VDLive per detector and collect time, holding its LinkFlows in order."""
    return itertools.groupby(readings, key=lambda r: (r.vdid, r.collect_time))


def vdlivelist_xml(update_time: int, readings: tuple[LinkReading, ...]) -> bytes:
    parts = [_HEAD.format(root="VDLiveList", update=_iso(update_time), every=60), "  <VDLives>\n"]
    for (vdid, collect_time), flows in _grouped(readings):
        parts.append(f"    <VDLive>\n      <VDID>{escape(vdid)}</VDID>\n      <LinkFlows>\n")
        for flow in flows:
            parts.append(f"        <LinkFlow>\n          <LinkID>{escape(flow.link_id)}</LinkID>\n          <Lanes>\n")
            for lane_id, lane in enumerate(flow.lanes):
                parts.append(
                    f"            <Lane>\n              <LaneID>{lane_id}</LaneID>\n"
                    "              <LaneType>1</LaneType>\n"
                    f"              <Speed>{_number(lane.speed, 1)}</Speed>\n"
                    f"              <Occupancy>{_number(lane.occupancy, 1)}</Occupancy>\n"
                    "              <Vehicles>\n"
                )
                for vehicle_type, volume in zip("SL", lane.volumes):
                    parts.append(
                        f"                <Vehicle>\n                  <VehicleType>{vehicle_type}</VehicleType>\n"
                        f"                  <Volume>{_number(volume, 0)}</Volume>\n                </Vehicle>\n"
                    )
                parts.append("              </Vehicles>\n            </Lane>\n")
            parts.append("          </Lanes>\n        </LinkFlow>\n")
        parts.append(
            "      </LinkFlows>\n      <Status>0</Status>\n"
            f"      <DataCollectTime>{_iso(collect_time)}</DataCollectTime>\n    </VDLive>\n"
        )
    parts.append("  </VDLives>\n</VDLiveList>\n")
    return "".join(parts).encode("utf-8")


def _json_number(value: float) -> float | int:
    return int(value) if value == int(value) else value


def vdlist_json(update_time: int, vds: tuple[StaticVD, ...]) -> bytes:
    document = {
        "UpdateTime": _iso(update_time),
        "UpdateInterval": 86400,
        "AuthorityCode": "THB",
        "VDs": [
            {
                "VDID": vd.vdid,
                "SubAuthorityCode": "THB-NE",
                "BiDirectional": int(len(vd.links) > 1),
                "DetectionLinks": [
                    {"LinkID": link.link_id, "RoadDirection": link.direction, "LaneNum": link.lanes}
                    for link in vd.links
                ],
                "PositionLon": vd.longitude,
                "PositionLat": vd.latitude,
                "RoadID": vd.road_id,
                "RoadName": vd.road_name,
                "RoadClass": 3,
                "DetectionType": 5,
            }
            for vd in vds
        ],
    }
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def vdlivelist_json(update_time: int, readings: tuple[LinkReading, ...]) -> bytes:
    document = {
        "UpdateTime": _iso(update_time),
        "UpdateInterval": 60,
        "AuthorityCode": "THB",
        "VDLives": [
            {
                "VDID": vdid,
                "LinkFlows": [
                    {
                        "LinkID": flow.link_id,
                        "Lanes": [
                            {
                                "LaneID": lane_id,
                                "LaneType": 1,
                                "Speed": _json_number(lane.speed),
                                "Occupancy": _json_number(lane.occupancy),
                                "Vehicles": [
                                    {"VehicleType": t, "Volume": _json_number(v)} for t, v in zip("SL", lane.volumes)
                                ],
                            }
                            for lane_id, lane in enumerate(flow.lanes)
                        ],
                    }
                    for flow in flows
                ],
                "Status": 0,
                "DataCollectTime": _iso(collect_time),
            }
            for (vdid, collect_time), flows in _grouped(readings)
        ],
    }
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


class _FolderSink:
    def __init__(self, root: Path):
        self.root = root

    def write(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def close(self) -> None:
        pass


class _ZipSink:
    def __init__(self, path: Path):
        self.archive = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)

    def write(self, name: str, data: bytes) -> None:
        self.archive.writestr(name, data)

    def close(self) -> None:
        self.archive.close()


class _SevenZipSink:
    def __init__(self, path: Path):
        self.archive = py7zr.SevenZipFile(path, "w")

    def write(self, name: str, data: bytes) -> None:
        self.archive.writestr(data, name)

    def close(self) -> None:
        self.archive.close()


def write_feed(out_dir: Path, spec: FeedSpec) -> Path:
    """Write the feed under ``out_dir``; returns what to import (the folder or the archive)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.pack is None:
        target, sink = out_dir, _FolderSink(out_dir)
    else:
        target = out_dir / f"feed.{spec.pack}"
        sink = _ZipSink(target) if spec.pack == "zip" else _SevenZipSink(target)
    render_list, render_live = (vdlist_xml, vdlivelist_xml) if spec.fmt == "xml" else (vdlist_json, vdlivelist_json)
    vdlist_bytes = None
    try:
        for snapshot in iter_snapshots(spec):
            vdlist_bytes = vdlist_bytes or render_list(snapshot.vdlist_update_time, snapshot.vds)
            sink.write(f"{snapshot.folder}/VDList.{spec.fmt}", vdlist_bytes)
            sink.write(f"{snapshot.folder}/VDLiveList.{spec.fmt}", render_live(snapshot.poll_time, snapshot.readings))
    finally:
        sink.close()
    return target
