"""Where the feed documents are: snapshot folders, single files, zip and 7z archives.

Collectors archive ``YYYY-MM-DD_HH-MM-SS/{VDList,VDLiveList}.xml`` folders, often zipped in
batches, and some ".zip" files are really 7z: every file is recognised by its first bytes,
never by its name. Folders and archives are walked in name order, which for snapshot folders is
time order. A zip member is read as a stream; a 7z archive is unpacked whole (solid 7z archives
cannot be read member by member cheaply) to a temporary folder in ``unpack_dir`` (the CLI's is
beside the output) that is removed when iteration ends. What an archive may unpack to is bounded,
from the sizes its headers declare, before a byte is unpacked (``MAX_MEMBER_BYTES`` per member,
``max_unpacked_bytes`` for all of a 7z); zipfile and py7zr stop at the declared sizes, and py7zr is
told the bound as well.
"""

from __future__ import annotations

import lzma
import os
import shutil
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Literal

import py7zr
from py7zr.exceptions import (
    ArchiveError,
    Bad7zFile,
    CrcError,
    DecompressionBombError,
    UnsupportedCompressionMethodError,
)

from social_xlstm.errors import InputError

Format = Literal["xml", "json", "zip", "7z", "other"]

SUPPORTED = "VDList/VDLiveList XML or JSON files, snapshot folders of them, or zip/7z archives of those"
_ARCHIVE_MAGIC = {b"PK\x03\x04": "zip", b"PK\x05\x06": "zip", b"7z\xbc\xaf\x27\x1c": "7z"}
# A snapshot document is a few MB (a VDLiveList of 1,500 detectors is 3.6 MB as XML): one member
# of 256 MiB is far beyond any, and a zip bomb (1 MB holding 1 GiB) is refused before it is read.
MAX_MEMBER_BYTES = 256 * 2**20
# A 7z archive is unpacked whole to disk before it is read (a 158 KB one wrote 1 GiB): a day of
# one-minute snapshots of 1,500 detectors is about 6.5 GB, so 16 GiB takes two such days; a larger
# archive needs a larger bound (the CLI's --max-unpacked-gib) and that much room beside the output.
MAX_UNPACKED_BYTES = 16 * 2**30
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


@dataclass(frozen=True)
class _Unpacking:
    """Where a 7z archive is unpacked, and the most it may unpack to."""

    into: Path | None  # None: TMPDIR
    max_bytes: int


def iter_sources(
    paths: list[Path],
    tally: Counter,
    *,
    unpack_dir: Path | None = None,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
) -> Iterator[FeedSource]:
    """Every feed document under ``paths``; explicit paths must be readable feed inputs.

    Files inside folders and archives that are neither XML, JSON nor archives (READMEs,
    checksums) are skipped and counted in ``tally['files_skipped']``. A 7z archive is unpacked in
    ``unpack_dir`` (default: TMPDIR), to at most ``max_unpacked_bytes``, one archive at a time.
    """
    unpacking = _Unpacking(unpack_dir, max_unpacked_bytes)
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(path, f"not found; expected {SUPPORTED}")
        if path.is_dir():
            yield from _iter_folder(path, str(path), tally, unpacking)
            continue
        fmt = sniff(str(path), _head(path))
        if fmt == "other":
            raise InputError(
                path, f"not a VD feed file (its first bytes are neither XML, JSON, zip nor 7z); expected {SUPPORTED}"
            )
        yield from _iter_file(path, str(path), fmt, tally, unpacking)


def _iter_folder(
    folder: Path, name: str, tally: Counter, unpacking: _Unpacking | None, separator: str = "/"
) -> Iterator[FeedSource]:
    """``unpacking`` None: the folder is an unpacked archive, in which archives are not read."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(f for f in files if not f.startswith(".")):
            path = Path(root) / file
            where = f"{name}{separator}{path.relative_to(folder).as_posix()}"
            yield from _iter_file(path, where, sniff(where, _head(path)), tally, unpacking)


def _iter_file(
    path: Path, where: str, fmt: Format, tally: Counter, unpacking: _Unpacking | None
) -> Iterator[FeedSource]:
    if fmt in ("xml", "json"):
        yield FeedSource(where, fmt, lambda: path.open("rb"))
    elif fmt in ("zip", "7z") and unpacking is None:
        raise _nested(where)
    elif fmt == "zip":
        yield from _iter_zip(path, where, tally)
    elif fmt == "7z":
        yield from _iter_7z(path, where, tally, unpacking)
    else:
        tally["files_skipped"] += 1


def _nested(member_where: str) -> InputError:
    return InputError(member_where, f"archive inside an archive is not supported; unpack the outer one ({SUPPORTED})")


def _too_large(member_where: str, size: int) -> InputError:
    return InputError(
        member_where,
        f"unpacks to {size} bytes, more than the {MAX_MEMBER_BYTES} an archive member may hold "
        "(a VDList or VDLiveList snapshot is a few MB)",
    )


def _iter_zip(path: Path, where: str, tally: Counter) -> Iterator[FeedSource]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in sorted((m for m in archive.infolist() if not m.is_dir()), key=lambda m: m.filename):
                member = info.filename
                member_where = f"{where}:{member}"
                with archive.open(info) as stream:
                    fmt = sniff(member_where, stream.read(512))
                if fmt in ("zip", "7z"):
                    raise _nested(member_where)
                if fmt == "other":
                    tally["files_skipped"] += 1
                    continue
                if info.file_size > MAX_MEMBER_BYTES:  # zipfile reads no more than this size (then checks the CRC)
                    raise _too_large(member_where, info.file_size)
                yield FeedSource(member_where, fmt, lambda m=info: archive.open(m))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, zlib.error) as exc:
        raise InputError(where, f"unreadable zip archive ({exc})") from None


def _iter_7z(path: Path, where: str, tally: Counter, unpacking: _Unpacking) -> Iterator[FeedSource]:
    with tempfile.TemporaryDirectory(prefix=".social-xlstm-7z-", dir=unpacking.into) as unpacked:
        try:
            # given a file object, not a path, py7zr unpacks in this thread (with a path, in a thread per
            # solid block, which an interrupted import could not stop before removing the folder)
            with (
                path.open("rb") as file,
                py7zr.SevenZipFile(file, mode="r", max_extract_size=unpacking.max_bytes) as archive,
            ):
                if archive.needs_password():
                    raise InputError(where, "7z archive is encrypted; provide an unencrypted archive")
                _check_7z_sizes(where, archive.list(), unpacking.max_bytes, unpacked)
                archive.extractall(path=unpacked)
        except DecompressionBombError:
            raise InputError(
                where,
                f"unpacks to more than the {unpacking.max_bytes} bytes allowed, more than its headers declare",
            ) from None
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
        yield from _iter_folder(Path(unpacked), where, tally, None, separator=":")


def _check_7z_sizes(where: str, members: list, max_unpacked_bytes: int, unpacked: str) -> None:
    """Refuse an archive that would unpack past the bounds, or past the free disk, before unpacking it."""
    total = 0
    for member in members:
        size = member.uncompressed or 0  # None for a folder
        if size > MAX_MEMBER_BYTES:
            raise _too_large(f"{where}:{member.filename}", size)
        total += size
    if total > max_unpacked_bytes:
        raise InputError(
            where,
            f"unpacks to {total} bytes in all, more than the {max_unpacked_bytes} bytes allowed "
            "(a 7z archive is unpacked whole before it is read; --max-unpacked-gib raises the bound)",
        )
    free = shutil.disk_usage(unpacked).free
    if total > free:
        raise InputError(where, f"unpacks to {total} bytes, and the disk of {unpacked} has {free} bytes free")
