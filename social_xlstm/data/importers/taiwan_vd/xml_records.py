"""The XML form of the feeds (MOTC traffic-data standard), parsed with defusedxml.

A snapshot file (a few MB) is parsed whole: the C tree builder is much faster than events.
A file too big to hold is streamed with ``iterparse``, each ``VD`` / ``VDLive`` cleared once
converted. Either way each such element is rebuilt as the JSON-shaped dict that ``records``
converts, so the XML and JSON forms share one conversion. Elements count only in the root's
namespace: the standard one, or none at all (some collectors strip it); others are ignored.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring, iterparse

from social_xlstm.data.importers.taiwan_vd.records import NAMESPACE, FeedFile, LinkReading, link_readings, static_vd, update_time
from social_xlstm.errors import InputError

ROOTS = {"VDList": "VD", "VDLiveList": "VDLive"}  # root -> its repeated top-level record
# repeated elements -> the list they form in their parent (the JSON field name)
REPEATED = {"DetectionLink": "DetectionLinks", "LinkFlow": "LinkFlows", "Lane": "Lanes", "Vehicle": "Vehicles"}


def _malformed(where: str, exc: Exception) -> InputError:
    return InputError(where, f"malformed XML ({exc}); expected a VDList or VDLiveList document")


def _prefix(where: str, root: Element) -> str:
    """``{namespace}`` of a VDList / VDLiveList root; anything else is not this feed."""
    namespace, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local not in ROOTS or namespace not in (NAMESPACE, ""):
        raise InputError(where, f"root element is {root.tag!r}, expected VDList or VDLiveList in namespace {NAMESPACE}")
    return f"{{{namespace}}}" if namespace else ""


def _as_dict(element: Element, prefix: str, into: dict | None = None) -> dict:
    """The JSON shape of an element: leaves become fields, repeated children lists, wrappers vanish."""
    shape = {} if into is None else into
    for child in element:
        if not child.tag.startswith(prefix):
            continue
        local = child.tag[len(prefix):]
        if local in REPEATED:
            shape.setdefault(REPEATED[local], []).append(_as_dict(child, prefix))
        elif len(child):
            _as_dict(child, prefix, shape)  # a wrapper such as <LinkFlows>
        else:
            shape[local] = child.text
    return shape


def _whole(where: str, data: bytes) -> Iterator[Element]:
    """The root, then each top-level record element of a document held in memory."""
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException) as exc:
        raise _malformed(where, exc) from None
    yield root
    prefix = _prefix(where, root)
    record = ROOTS[root.tag[len(prefix):]]
    yield from root.iterfind(f"{prefix}{record}s/{prefix}{record}")


def _streamed(where: str, stream: BinaryIO) -> Iterator[Element]:
    """The root (children not yet read), then each top-level record element, cleared after use."""
    events = iterparse(stream, events=("start", "end"))
    try:
        _, root = next(events)
        yield root
        prefix = _prefix(where, root)
        record_tag = prefix + ROOTS[root.tag[len(prefix):]]
        for event, element in events:
            if event == "end" and element.tag == record_tag:
                yield element
                element.clear()
    except (ParseError, DefusedXmlException) as exc:
        raise _malformed(where, exc) from None


def read_xml(where: str, source: bytes | BinaryIO) -> FeedFile:
    """Parse a document given as bytes (whole) or as a binary stream (streamed).

    A VDLiveList's readings are produced lazily; a VDList (a few thousand detectors) at once.
    """
    elements = _whole(where, source) if isinstance(source, bytes) else _streamed(where, source)
    root = next(elements)
    prefix = _prefix(where, root)
    if root.tag == prefix + "VDList":
        vds = tuple(static_vd(where, _as_dict(vd, prefix)) for vd in elements)
        return FeedFile("VDList", update_time(where, {"UpdateTime": root.findtext(prefix + "UpdateTime")}), vds)
    # a streamed root may not have read its UpdateTime yet: the time is then unknown (None)
    live_update_time = update_time(where, {"UpdateTime": root.findtext(prefix + "UpdateTime")})
    return FeedFile("VDLiveList", live_update_time, _readings(where, elements, prefix))


def _readings(where: str, elements: Iterator[Element], prefix: str) -> Iterator[LinkReading]:
    for live in elements:
        yield from link_readings(where, _as_dict(live, prefix))
