"""Atomic writes: a reader never sees half a dataset, report, bundle or forecast file, and a
failure leaves nothing behind.

A write goes to a hidden sibling named after its owner (host, pid namespace and process id)
and replaces the target in one step. A process killed outright (SIGKILL) cannot remove its
sibling: the next write to the same target removes the siblings of owners that are gone (and
puts back an old output that a kill caught between the two renames of the fallback swap).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import glob
import hashlib
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from social_xlstm.errors import InputError

_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths atomically


@functools.cache
def _host() -> str:
    """This host and pid namespace: containers sharing a host name do not share process ids."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname().replace('.', '_')}_{namespace}"  # the tag ends at the first dot


def _owner_tag() -> str:
    return f"{_host()}-{os.getpid()}"


# a temporary sibling's name adds its owner (a host name of up to 64 bytes, a namespace, a pid),
# a random part and at most MAX_KEPT_SUFFIX bytes of suffix to the output's name: a longer name is
# shortened to MAX_PREFIX_NAME bytes with a digest, within the file system's 255
MAX_PREFIX_NAME = 120
MAX_KEPT_SUFFIX = 16


def _prefix(out: Path) -> str:
    """The whole name (``run.v1`` and ``run.v2`` must not share siblings), in the file system's
    bytes (a name that is not UTF-8 is fine)."""
    name = os.fsencode(out.name)
    if len(name) > MAX_PREFIX_NAME:
        name = name[: MAX_PREFIX_NAME - 17] + b"~" + hashlib.sha1(name).hexdigest()[:16].encode()
    return f".{os.fsdecode(name)}."


def _own_prefix(out: Path) -> str:
    """The names of this process's temporary siblings of ``out`` start so (its trash: then ``old.``)."""
    return f"{_prefix(out)}{_owner_tag()}."


def _kept_suffix(out: Path) -> str:
    """The output's suffix on its temporary file (writers such as matplotlib read the format from
    it), unless it is too long to leave room for the rest of the name."""
    return out.suffix if len(os.fsencode(out.suffix)) <= MAX_KEPT_SUFFIX else ""


def _make_parent(out: Path) -> None:
    """Create ``out``'s folder; a file standing where a folder must be is the user's to fix."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in reversed(out.parents) if p.exists() and not p.is_dir()), out.parent)
        raise InputError(out, f"{blocking} is not a folder; expected a folder there") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_abandoned(out: Path) -> list[Path]:
    """Remove the temporary siblings of ``out`` left by processes of this host that have ended,
    after putting back an old ``out`` one of them had moved aside; returns what was removed."""
    host, removed = _host(), []
    if not out.parent.is_dir():
        return removed
    prefix = _prefix(out)
    for sibling in out.parent.glob(f"{glob.escape(prefix)}*"):
        owner, _, rest = sibling.name[len(prefix) :].partition(".")
        owner_host, _, pid = owner.rpartition("-")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        old = sibling / out.name
        if rest.startswith("old.") and not out.exists() and old.exists():
            os.replace(old, out)
        with contextlib.suppress(OSError):  # another writer may be cleaning up the same one
            _remove(sibling)
        removed.append(sibling)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


@functools.cache
def _renameat2():
    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the system cannot."""
    renameat2 = _renameat2() if sys.platform.startswith("linux") else None
    if renameat2 is None:
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the file system cannot exchange
            return False
        raise OSError(code, os.strerror(code), str(b))
    return True


def _swap_by_renames(tmp: Path, out: Path) -> None:
    """Where paths cannot be exchanged: out aside, tmp in. Stopped between the two, the old out
    goes back (a SIGKILL there is undone by the next write's ``remove_abandoned``)."""
    trash = Path(tempfile.mkdtemp(prefix=f"{_own_prefix(out)}old.", dir=out.parent))
    os.replace(out, trash / out.name)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(trash / out.name, out)
        trash.rmdir()
        raise
    shutil.rmtree(trash)


def _own_temporaries(out: Path, prefix: str) -> list[Path]:
    """This process's temporary siblings of ``out`` (not its trash, which may hold the old output):
    also one that ``mkdtemp`` or ``mkstemp`` made before a signal stopped it returning the name."""
    return [p for p in out.parent.glob(f"{glob.escape(prefix)}*") if not p.name[len(prefix) :].startswith("old.")]


def _umask() -> int:
    """The process's umask, read from /proc (setting it to read it back would change it for a
    moment under every thread); elsewhere set and put back at once."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _ordinary(path: Path, mode: int) -> None:
    """Give the temporary the permissions an ordinary new file or folder would have: ``mode``
    less the umask, keeping the setgid bit a folder inherits (its files keep the group)."""
    os.chmod(path, (os.stat(path).st_mode & 0o7000) | (mode & ~_umask()))


def _name_output(exc: BaseException, out: Path) -> None:
    """A writer's error without a file name (pyarrow's full disk names none) names the output, so
    the one line the user reads says where it could not write."""
    if isinstance(exc, OSError) and exc.filename is None:
        exc.filename = str(out)


@contextlib.contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``out`` in one step, so that
    a kill at any moment leaves either the old ``out`` or the new one, never neither."""
    _make_parent(out)
    remove_abandoned(out)
    prefix = _own_prefix(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
        _ordinary(tmp, 0o777)  # mkdtemp makes it private
        yield tmp
        if out.exists() or out.is_symlink():
            if _exchange(tmp, out):
                _remove(tmp)  # now the old out (a link to one, if out was a link)
            else:
                _swap_by_renames(tmp, out)
        else:
            os.replace(tmp, out)
    except BaseException as exc:
        for leftover in _own_temporaries(out, prefix):
            _remove(leftover)
        _name_output(exc, out)
        raise


@contextlib.contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix); on success it replaces ``out``."""
    _make_parent(out)
    remove_abandoned(out)
    prefix = _own_prefix(out)
    try:
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=_kept_suffix(out), dir=out.parent)
        os.close(handle)
        tmp = Path(name)
        _ordinary(tmp, 0o666)  # mkstemp makes it private
        yield tmp
        os.replace(tmp, out)
    except BaseException as exc:
        for leftover in _own_temporaries(out, prefix):
            leftover.unlink(missing_ok=True)
        _name_output(exc, out)
        raise


def refuse_replacing(out: Path, inputs: Iterable[Path], option: str = "--out") -> None:
    """Refuse an output path that is one of the files the command reads (a dataset's readings):
    writing it would replace them."""
    target = out.resolve()
    for read in inputs:
        if target == read.resolve():
            raise InputError(option, f"{out} would replace {read}, which this command reads; write elsewhere")
