"""The XML form of the feeds (MOTC traffic-data standard), read by the standard library's C parser.

A document is fed to an ``XMLPullParser`` a chunk at a time, and each ``VD`` / ``VDLive`` is
converted once its end tag is read, then let go: a file of any size is read in bounded
memory, and a small one takes the same path. Nothing else is kept either (the parser would keep
every element, and the text between them, to the end): an element outside the records is
dropped once it ends, except the root's first UpdateTime, and a record, a run of text and the
nesting are bounded (``MAX_RECORD_BYTES``, ``MAX_TEXT_BYTES``, ``MAX_DEPTH``), so that memory
follows neither the records nor whatever else a document holds. Fields are read by C lookups
(``XmlFields``). Elements count only in the root's namespace: the standard one, or none at all
(some collectors strip it); others are ignored.

The feeds never carry a DTD, and without one no entity can be declared, so a document with a
DOCTYPE is refused before the tree parser reads its bytes (``_DoctypeGuard``): no entity
expansion bomb, no external entity, whatever the expat version. defusedxml, used before,
protects through the pure-Python parser: 80 ms for a 1,500-VD snapshot where this takes 45.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import BinaryIO, Iterator
from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from xml.parsers import expat

from social_xlstm.data.importers.taiwan_vd.records import (
    NAMESPACE,
    FeedFile,
    LinkReading,
    link_readings,
    static_vd,
    update_time,
)
from social_xlstm.errors import InputError

ROOTS = {"VDList": "VD", "VDLiveList": "VDLive"}  # root -> its repeated record
CHUNK_BYTES = 1 << 16
# A VDLive is a few kB (a VD less): one of a MiB is no record of the feed, and the elements of
# one record are held until it ends (at most some 250,000 of them in a MiB, ~25 MiB).
MAX_RECORD_BYTES = 1 << 20
# The parser holds a run of text (or a comment, or one tag) whole until the next element starts
# or ends; the feed's runs are numbers, names and indentation: a MiB of one is no feed (a 1 MB
# zip held 1 GiB of blanks).
MAX_TEXT_BYTES = 1 << 20
# The feed nests 10 deep (VDLiveList/VDLives/VDLive/LinkFlows/LinkFlow/Lanes/Lane/Vehicles/
# Vehicle/Volume); every open element is held.
MAX_DEPTH = 32


@dataclass(frozen=True)
class XmlFields:
    """``records.Fields`` of elements in one namespace: a repeated child sits in a wrapper element."""

    prefix: str  # "{namespace}", or "" for a document without one

    def value(self, node: Element, name: str) -> str | None:
        return node.findtext(self.prefix + name)

    def items(self, node: Element, wrapper: str, item: str) -> list[Element]:
        outer = node.find(self.prefix + wrapper)
        return [] if outer is None else outer.findall(self.prefix + item)


def _malformed(where: str, exc: Exception) -> InputError:
    return InputError(where, f"malformed XML ({exc}); expected a VDList or VDLiveList document")


class _RootStarted(Exception):
    """The prolog is over: no DOCTYPE can follow."""


class _DoctypeGuard:
    """Reads each chunk before the tree parser does, until the root element starts, and refuses a DOCTYPE."""

    def __init__(self, where: str):
        self.where = where
        self.done = False
        self._expat = expat.ParserCreate(namespace_separator="}")
        self._expat.StartDoctypeDeclHandler = self._refuse
        self._expat.StartElementHandler = self._root_started

    def _refuse(self, *_) -> None:
        raise InputError(
            self.where,
            "has a DOCTYPE declaration, expected none: the VD feeds declare no DTD, and "
            "a document that could declare entities is refused",
        )

    @staticmethod
    def _root_started(*_) -> None:
        raise _RootStarted

    def check(self, chunk: bytes) -> None:
        if self.done:
            return
        try:
            self._expat.Parse(chunk, False)
        except _RootStarted:
            self.done = True
        except expat.ExpatError as exc:
            raise _malformed(self.where, exc) from None
        except ValueError as exc:  # expat reads no multi-byte encoding but UTF-8 (Big5, say)
            raise InputError(self.where, f"{exc}; expected UTF-8 XML, as the VD feeds are") from None


def _events(where: str, stream: BinaryIO, fed: list[int]) -> Iterator[tuple[str, Element]]:
    """("start" | "end", element) in document order, read a chunk at a time; ``fed[0]`` is the
    number of bytes read so far (for the bounds on what the parser holds)."""
    guard = _DoctypeGuard(where)
    parser = XMLPullParser(events=("start", "end"))
    quiet = 0  # bytes read since the chunk that held the last event
    try:
        while chunk := stream.read(CHUNK_BYTES):
            guard.check(chunk)
            parser.feed(chunk)
            fed[0] += len(chunk)
            events = list(parser.read_events())
            if events:
                quiet = 0
                yield from events
            else:
                quiet += len(chunk)
                if quiet > MAX_TEXT_BYTES:
                    raise InputError(
                        where,
                        f"more than {MAX_TEXT_BYTES} bytes of text, a comment or a tag at byte {fed[0] - quiet}, "
                        "without an element starting or ending; expected a VDList or VDLiveList document",
                    )
        parser.close()
        yield from parser.read_events()
    except ParseError as exc:
        raise _malformed(where, exc) from None


def _too_deep(where: str, fed: list[int]) -> InputError:
    return InputError(where, f"elements nested more than {MAX_DEPTH} deep at byte {fed[0]}; the VD feeds nest 10 deep")


def _records(
    where: str, events: Iterator[tuple[str, Element]], fed: list[int], root: Element, prefix: str, tag: str
) -> Iterator[Element]:
    """Each complete record element (``tag``, at any depth), let go once the consumer moves on.

    Every other element is let go when it ends, except the root's first UpdateTime: the parser
    would otherwise keep them all, attached to the root, to the end of the document.
    """
    update_tag, keep_update = prefix + "UpdateTime", True
    stack = [root]  # the open elements outside any record
    record = parent = None
    inner = started = 0  # depth inside the open record, and the byte count when it started
    for event, element in events:
        if record is not None:
            if element is record:  # its end
                yield record
                record.clear()
                parent.remove(record)
                record = parent = None
            elif event == "start":
                inner += 1
                if fed[0] - started > MAX_RECORD_BYTES:
                    name = tag[len(prefix) :]
                    raise InputError(
                        where,
                        f"a {name} longer than {MAX_RECORD_BYTES} bytes (from about byte {started}); "
                        f"a {name} of the feed has a few kB",
                    )
                if len(stack) + inner > MAX_DEPTH:
                    raise _too_deep(where, fed)
            else:
                inner -= 1
        elif event == "start":
            if element.tag == tag:
                record, parent, inner, started = element, stack[-1], 0, fed[0]
            else:
                stack.append(element)
                if len(stack) > MAX_DEPTH:
                    raise _too_deep(where, fed)
        else:
            stack.pop()
            if not stack:
                continue  # the root's end
            if keep_update and element.tag == update_tag and stack[-1] is root:
                keep_update = False
            else:
                element.clear()
                stack[-1].remove(element)


def _prefix(where: str, root: Element) -> str:
    """``{namespace}`` of a VDList / VDLiveList root; anything else is not this feed."""
    namespace, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local not in ROOTS or namespace not in (NAMESPACE, ""):
        raise InputError(where, f"root element is {root.tag!r}, expected VDList or VDLiveList in namespace {NAMESPACE}")
    return f"{{{namespace}}}" if namespace else ""


def read_xml(where: str, source: bytes | BinaryIO) -> FeedFile:
    """Parse a document given as bytes or as a binary stream.

    A VDLiveList's readings are produced lazily; a VDList (a few thousand detectors) at once.
    The UpdateTime is the one that precedes the first VDLive (as published), else unknown (None).
    """
    fed = [0]
    events = _events(where, io.BytesIO(source) if isinstance(source, bytes) else source, fed)
    _, root = next(events)
    prefix = _prefix(where, root)
    fields = XmlFields(prefix)
    kind = root.tag[len(prefix) :]
    records = _records(where, events, fed, root, prefix, prefix + ROOTS[kind])
    if kind == "VDList":
        vds = tuple(static_vd(where, fields, vd) for vd in records)
        return FeedFile("VDList", update_time(where, fields, root), vds)
    first = next(records, None)  # reading up to the first VDLive reads the UpdateTime before it
    lives = records if first is None else itertools.chain([first], records)
    return FeedFile("VDLiveList", update_time(where, fields, root), _readings(where, fields, lives))


def _readings(where: str, fields: XmlFields, lives: Iterator[Element]) -> Iterator[LinkReading]:
    for live in lives:
        yield from link_readings(where, fields, live)
