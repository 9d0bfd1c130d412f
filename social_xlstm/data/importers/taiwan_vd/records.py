"""Raw records of the two VD feeds, and their conversion from either form.

Both forms name their fields alike (``VDID``, ``LinkFlows`` of ``LinkFlow``, ``Speed``...); a
parser hands this module its records with a ``Fields`` reader for its form (JSON objects or
XML elements), and one conversion turns them into records, so the two forms cannot drift
apart. Numbers are kept as published (sentinels included): the cleaning rules live in one
place, ``quality``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Literal, Protocol

from social_xlstm.errors import InputError

NAMESPACE = "http://traffic.transportdata.tw/standard/traffic/schema/"
FEED_OFFSET = timezone(timedelta(hours=8))  # the feeds publish Taiwan local time (+08:00)

FeedKind = Literal["VDList", "VDLiveList"]


class Fields(Protocol):
    """Reads a parsed record of one form by the published field names."""

    def value(self, node: Any, name: str) -> object:
        """The raw value of a leaf field; None when absent."""

    def items(self, node: Any, wrapper: str, item: str) -> Iterable[Any]:
        """The repeated children (``item``, e.g. LinkFlow) listed under ``wrapper`` (LinkFlows)."""


@dataclass(frozen=True, slots=True)
class DetectionLink:
    link_id: str
    direction: str
    lanes: int | None


@dataclass(frozen=True, slots=True)
class StaticVD:
    """One detector of a VDList: where it is and which links (directions) it watches."""

    vdid: str
    links: tuple[DetectionLink, ...]
    longitude: float
    latitude: float
    road_id: str
    road_name: str


@dataclass(frozen=True, slots=True)
class Lane:
    speed: float
    occupancy: float
    volumes: tuple[float, ...]  # one per vehicle type


@dataclass(frozen=True, slots=True)
class LinkReading:
    """One LinkFlow of one VDLive: a minute of one direction of one detector."""

    vdid: str
    link_id: str
    collect_time: int  # epoch seconds
    lanes: tuple[Lane, ...]


@dataclass
class FeedFile:
    """A parsed document: a VDList (records materialised, they are few) or a VDLiveList
    (records streamed, so a large file never sits in memory as objects). ``update_time`` is
    the document's UpdateTime when known (the snapshot time, for a VDLiveList)."""

    kind: FeedKind
    update_time: int | None
    records: Iterable[StaticVD] | Iterable[LinkReading]


def _shown(raw: object) -> str:
    """A field's value for a message: a JSON list or object by its kind (it may be huge, or nested
    deeper than ``repr`` goes), any other value cut to a line."""
    if isinstance(raw, (list, dict)):
        return f"a JSON {'list' if isinstance(raw, list) else 'object'}"
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def to_number(where: str, context: str, field: str, raw: object) -> float:
    """A numeric field; absent or empty is NaN (missing), anything else non-numeric is bad input."""
    if raw is None or raw == "":
        return math.nan
    if isinstance(raw, (bool, list, dict)):
        raise InputError(where, f"{context}: field {field} is {_shown(raw)}, expected a number")
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise InputError(where, f"{context}: field {field} is {_shown(raw)}, expected a number") from None
    except OverflowError:  # a JSON integer of 400 digits
        raise InputError(where, f"{context}: field {field} is {_shown(raw)}, past what a number can hold") from None


def to_epoch(where: str, context: str, field: str, raw: object) -> int:
    """An ISO 8601 time as epoch seconds; a time without offset is taken as the feed's +08:00."""
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(where, f"{context}: field {field} is missing, expected a time like 2025-03-18T00:46:11+08:00")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InputError(
            where, f"{context}: field {field} is {_shown(raw)}, expected a time like 2025-03-18T00:46:11+08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=FEED_OFFSET)
    return int(moment.timestamp())


def to_text(where: str, context: str, field: str, raw: object, *, required: bool) -> str:
    if isinstance(raw, (list, dict)):
        raise InputError(where, f"{context}: field {field} is {_shown(raw)}, expected text")
    text = "" if raw is None else str(raw).strip()
    if required and not text:
        raise InputError(where, f"{context}: field {field} is missing or empty")
    return text


MAX_LANES = 64  # more lanes than any road has: a garbled field or a sentinel (255), not a road


def to_lane_count(where: str, context: str, raw: object) -> int | None:
    """Lanes, or None (unknown) for what no road has: a sentinel (-99, 255), inf, a fraction. One
    detector's garbled static field is unknown, as a sentinel reading is missing: the feed goes on."""
    value = to_number(where, context, "LaneNum", raw)
    return int(value) if 0 <= value <= MAX_LANES and value == int(value) else None


def to_coordinate(where: str, context: str, field: str, raw: object, limit: float) -> float:
    """A position in degrees, NaN (unknown) when absent or outside +-``limit`` (a sentinel, a typo)."""
    value = to_number(where, context, field, raw)
    return value if -limit <= value <= limit else math.nan


def static_vd(where: str, fields: Fields, vd: Any) -> StaticVD:
    vdid = to_text(where, "VD", "VDID", fields.value(vd, "VDID"), required=True)
    context = f"VD {vdid}"
    links = tuple(
        DetectionLink(
            link_id=to_text(where, context, "LinkID", fields.value(link, "LinkID"), required=True),
            direction=to_text(
                where, context, "RoadDirection", fields.value(link, "RoadDirection"), required=False
            ).upper(),
            lanes=to_lane_count(where, context, fields.value(link, "LaneNum")),
        )
        for link in fields.items(vd, "DetectionLinks", "DetectionLink")
    )
    return StaticVD(
        vdid=vdid,
        links=links,
        longitude=to_coordinate(where, context, "PositionLon", fields.value(vd, "PositionLon"), 180.0),
        latitude=to_coordinate(where, context, "PositionLat", fields.value(vd, "PositionLat"), 90.0),
        road_id=to_text(where, context, "RoadID", fields.value(vd, "RoadID"), required=False),
        road_name=to_text(where, context, "RoadName", fields.value(vd, "RoadName"), required=False),
    )


def link_readings(where: str, fields: Fields, live: Any) -> Iterator[LinkReading]:
    """The LinkFlows of one VDLive, one reading per link (direction)."""
    vdid = to_text(where, "VDLive", "VDID", fields.value(live, "VDID"), required=True)
    context = f"VDLive {vdid}"
    collect_time = to_epoch(where, context, "DataCollectTime", fields.value(live, "DataCollectTime"))
    for flow in fields.items(live, "LinkFlows", "LinkFlow"):
        lanes = tuple(
            Lane(
                speed=to_number(where, context, "Speed", fields.value(lane, "Speed")),
                occupancy=to_number(where, context, "Occupancy", fields.value(lane, "Occupancy")),
                volumes=tuple(
                    to_number(where, context, "Volume", fields.value(vehicle, "Volume"))
                    for vehicle in fields.items(lane, "Vehicles", "Vehicle")
                ),
            )
            for lane in fields.items(flow, "Lanes", "Lane")
        )
        link_id = to_text(where, context, "LinkID", fields.value(flow, "LinkID"), required=True)
        yield LinkReading(vdid, link_id, collect_time, lanes)


def update_time(where: str, fields: Fields, document: Any) -> int | None:
    raw = fields.value(document, "UpdateTime")
    return None if raw is None else to_epoch(where, "document", "UpdateTime", raw)
