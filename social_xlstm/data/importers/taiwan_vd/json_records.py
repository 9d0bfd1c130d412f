"""The JSON form of the feeds: the same field names as the XML, lists where XML nests elements.

``{"UpdateTime": ..., "VDs": [{"VDID": ..., "DetectionLinks": [{"LinkID": ...}], ...}]}`` and
``{"UpdateTime": ..., "VDLives": [{"VDID": ..., "LinkFlows": [{"LinkID": ..., "Lanes":
[{"Speed": ..., "Vehicles": [{"VehicleType": "S", "Volume": 1}]}]}], "DataCollectTime": ...}]}``.
One snapshot is a few megabytes at most, so the document is loaded whole; one larger than
``MAX_JSON_BYTES``, or nested deeper than Python's parser goes, is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from social_xlstm.data.importers.taiwan_vd.records import FeedFile, LinkReading, link_readings, static_vd, update_time
from social_xlstm.errors import InputError

# Loaded whole, a document costs up to some 25 times its size as Python objects ([{},{},...]):
# 32 MiB stays under a GiB in each parsing process. A JSON VDLiveList of 1,500 detectors is about
# 1 MB, so this is some 40,000 detectors; the XML form, read as a stream, has no such bound.
MAX_JSON_BYTES = 32 * 2**20


@dataclass(frozen=True)
class JsonFields:
    """``records.Fields`` of JSON objects: a repeated child is a list under the wrapper's name."""

    where: str

    def value(self, node: dict, name: str) -> object:
        return node.get(name)

    def items(self, node: dict, wrapper: str, item: str) -> list:
        """Absent or null is empty; anything but a list of objects is bad input."""
        value = node.get(wrapper)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            raise InputError(self.where, f"field {wrapper} is not a list of objects")
        return value


def read_json(where: str, source: bytes | BinaryIO) -> FeedFile:
    text = source if isinstance(source, bytes) else source.read(MAX_JSON_BYTES + 1)
    if len(text) > MAX_JSON_BYTES:
        raise InputError(
            where,
            f"JSON document larger than {MAX_JSON_BYTES} bytes (it is read whole); a VDList or VDLiveList snapshot "
            "is a few MB, and the XML form of the feed has no such bound",
        )
    try:
        document = json.loads(text)
    except RecursionError:
        raise InputError(
            where, "JSON nested deeper than Python's parser reads; a VDList or VDLiveList nests 9 deep"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            where, f"malformed JSON ({exc.msg} at line {exc.lineno}); expected a VDList or VDLiveList document"
        ) from None
    except UnicodeDecodeError:
        raise InputError(where, "not UTF-8 text; expected a VDList or VDLiveList JSON document") from None
    fields = JsonFields(where)
    if isinstance(document, dict) and "VDs" in document:
        vds = tuple(static_vd(where, fields, vd) for vd in fields.items(document, "VDs", "VD"))
        return FeedFile("VDList", update_time(where, fields, document), vds)
    if isinstance(document, dict) and "VDLives" in document:
        lives = fields.items(document, "VDLives", "VDLive")
        return FeedFile("VDLiveList", update_time(where, fields, document), _iter_readings(where, fields, lives))
    raise InputError(where, "JSON document has neither 'VDs' nor 'VDLives'; expected a VDList or VDLiveList")


def _iter_readings(where: str, fields: JsonFields, lives: list) -> Iterator[LinkReading]:
    for live in lives:
        yield from link_readings(where, fields, live)
