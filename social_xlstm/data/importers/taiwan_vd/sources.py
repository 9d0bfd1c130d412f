"""Where the feed documents are: snapshot folders, single files, zip and 7z archives.

Collectors archive ``YYYY-MM-DD_HH-MM-SS/{VDList,VDLiveList}.xml`` folders, often zipped in
batches, and some ".zip" files are really 7z: every file is recognised by its first bytes,
never by its name. Folders and archives are walked in name order, which for snapshot folders is
time order. A 7z archive is unpacked to a temporary folder (solid 7z archives cannot be read
member by member cheaply) that is removed when iteration ends.
"""

from __future__ import annotations

import lzma
import os
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Literal

import py7zr
from py7zr.exceptions import ArchiveError, Bad7zFile, CrcError, UnsupportedCompressionMethodError

from social_xlstm.errors import InputError

Format = Literal["xml", "json", "zip", "7z", "other"]

SUPPORTED = "VDList/VDLiveList XML or JSON files, snapshot folders of them, or zip/7z archives of those"
_ARCHIVE_MAGIC = {b"PK\x03\x04": "zip", b"PK\x05\x06": "zip", b"7z\xbc\xaf\x27\x1c": "7z"}
_UNSUPPORTED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"Rar!\x1a\x07": "RAR",
    b"MSCF": "CAB",
}


@dataclass(frozen=True)
class FeedSource:
    """A document to parse: a name for messages and a way to open it as bytes."""

    name: str
    fmt: Literal["xml", "json"]
    open: Callable[[], BinaryIO]


def sniff(where: str, head: bytes) -> Format:
    """The format of a file from its first bytes; an archive we cannot read is an InputError."""
    for magic, fmt in _ARCHIVE_MAGIC.items():
        if head.startswith(magic):
            return fmt
    for magic, kind in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise InputError(where, f"{kind} archive is not supported; repack it as zip or 7z ({SUPPORTED})")
    if len(head) > 262 and head[257:262] == b"ustar":
        raise InputError(where, f"tar archive is not supported; repack it as zip or 7z ({SUPPORTED})")
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        return "xml"
    if text.startswith((b"{", b"[")):
        return "json"
    return "other"


def _head(path: Path) -> bytes:
    with path.open("rb") as stream:
        return stream.read(512)


def iter_sources(paths: list[Path], tally: Counter) -> Iterator[FeedSource]:
    """Every feed document under ``paths``; explicit paths must be readable feed inputs.

    Files inside folders and archives that are neither XML, JSON nor archives (READMEs,
    checksums) are skipped and counted in ``tally['files_skipped']``.
    """
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(path, f"not found; expected {SUPPORTED}")
        if path.is_dir():
            yield from _iter_folder(path, str(path), tally)
            continue
        fmt = sniff(str(path), _head(path))
        if fmt == "other":
            raise InputError(
                path, f"not a VD feed file (its first bytes are neither XML, JSON, zip nor 7z); expected {SUPPORTED}"
            )
        yield from _iter_file(path, str(path), fmt, tally)


def _iter_folder(folder: Path, name: str, tally: Counter, separator: str = "/") -> Iterator[FeedSource]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(f for f in files if not f.startswith(".")):
            path = Path(root) / file
            where = f"{name}{separator}{path.relative_to(folder).as_posix()}"
            yield from _iter_file(path, where, sniff(where, _head(path)), tally)


def _iter_file(path: Path, where: str, fmt: Format, tally: Counter) -> Iterator[FeedSource]:
    if fmt in ("xml", "json"):
        yield FeedSource(where, fmt, lambda: path.open("rb"))
    elif fmt == "zip":
        yield from _iter_zip(path, where, tally)
    elif fmt == "7z":
        yield from _iter_7z(path, where, tally)
    else:
        tally["files_skipped"] += 1


def _iter_zip(path: Path, where: str, tally: Counter) -> Iterator[FeedSource]:
    try:
        with zipfile.ZipFile(path) as archive:
            for member in sorted(m for m in archive.namelist() if not m.endswith("/")):
                member_where = f"{where}:{member}"
                with archive.open(member) as stream:
                    fmt = sniff(member_where, stream.read(512))
                if fmt in ("zip", "7z"):
                    raise InputError(
                        member_where, f"archive inside an archive is not supported; unpack the outer one ({SUPPORTED})"
                    )
                if fmt == "other":
                    tally["files_skipped"] += 1
                    continue
                yield FeedSource(member_where, fmt, lambda m=member: archive.open(m))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, zlib.error) as exc:
        raise InputError(where, f"unreadable zip archive ({exc})") from None


def _iter_7z(path: Path, where: str, tally: Counter) -> Iterator[FeedSource]:
    with tempfile.TemporaryDirectory(prefix="taiwan-vd-7z-") as unpacked:
        try:
            with py7zr.SevenZipFile(path, mode="r") as archive:
                if archive.needs_password():
                    raise InputError(where, "7z archive is encrypted; provide an unencrypted archive")
                archive.extractall(path=unpacked)
        except (
            ArchiveError,
            Bad7zFile,
            CrcError,
            UnsupportedCompressionMethodError,
            lzma.LZMAError,
            zlib.error,
            EOFError,
        ) as exc:
            raise InputError(where, f"unreadable 7z archive ({exc})") from None
        yield from _iter_folder(Path(unpacked), where, tally, separator=":")
