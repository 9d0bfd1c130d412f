"""The JSON form of the feeds: the same field names as the XML, lists where XML nests elements.

``{"UpdateTime": ..., "VDs": [{"VDID": ..., "DetectionLinks": [{"LinkID": ...}], ...}]}`` and
``{"UpdateTime": ..., "VDLives": [{"VDID": ..., "LinkFlows": [{"LinkID": ..., "Lanes":
[{"Speed": ..., "Vehicles": [{"VehicleType": "S", "Volume": 1}]}]}], "DataCollectTime": ...}]}``.
One snapshot is a few megabytes at most, so the document is loaded whole.
"""

from __future__ import annotations

import json
from typing import BinaryIO, Iterator

from social_xlstm.data.importers.taiwan_vd.records import FeedFile, LinkReading, children, link_readings, static_vd, update_time
from social_xlstm.errors import InputError


def read_json(where: str, source: bytes | BinaryIO) -> FeedFile:
    try:
        document = json.loads(source) if isinstance(source, bytes) else json.load(source)
    except json.JSONDecodeError as exc:
        raise InputError(where, f"malformed JSON ({exc.msg} at line {exc.lineno}); expected a VDList or VDLiveList document") from None
    except UnicodeDecodeError:
        raise InputError(where, "not UTF-8 text; expected a VDList or VDLiveList JSON document") from None
    if isinstance(document, dict) and "VDs" in document:
        vds = tuple(static_vd(where, vd) for vd in children(where, document, "VDs"))
        return FeedFile("VDList", update_time(where, document), vds)
    if isinstance(document, dict) and "VDLives" in document:
        return FeedFile("VDLiveList", update_time(where, document), _iter_readings(where, children(where, document, "VDLives")))
    raise InputError(where, "JSON document has neither 'VDs' nor 'VDLives'; expected a VDList or VDLiveList")


def _iter_readings(where: str, lives: list) -> Iterator[LinkReading]:
    for live in lives:
        yield from link_readings(where, live)
