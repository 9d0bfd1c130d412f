"""Atomic writes: a reader never sees half a dataset, report, bundle or forecast file, and a
failure leaves nothing behind.

A write goes to a hidden sibling named after its owner (host and process id) and replaces the
target in one step. A process killed outright (SIGKILL, power loss) cannot remove its sibling:
the next write to the same target removes the siblings of owners on this host that are gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths atomically


def _host() -> str:
    return socket.gethostname().replace(".", "_")  # the tag ends at the first dot


def _owner_tag() -> str:
    return f"{_host()}-{os.getpid()}"


def _prefix(out: Path) -> str:
    return f".{out.stem if out.suffix else out.name}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_abandoned(out: Path) -> list[Path]:
    """Remove the temporary siblings of ``out`` left by processes of this host that have ended;
    returns what was removed."""
    host, removed = _host(), []
    if not out.parent.is_dir():
        return removed
    for sibling in out.parent.glob(f"{_prefix(out)}*"):
        owner = sibling.name[len(_prefix(out)) :].split(".", 1)[0]
        owner_host, _, pid = owner.rpartition("-")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if done != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
            return False
        raise OSError(errno, os.strerror(errno), str(b))
    return True


@contextlib.contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``out`` in one step, so that
    a kill at any moment leaves either the old ``out`` or the new one, never neither."""
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(out)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_prefix(out)}{_owner_tag()}.", dir=out.parent))
    try:
        yield tmp
        if out.exists() and _exchange(tmp, out):
            shutil.rmtree(tmp)  # now the old out
        elif out.exists():  # two renames: a kill between them leaves the old out in the trash
            trash = Path(tempfile.mkdtemp(prefix=f"{_prefix(out)}{_owner_tag()}.old.", dir=out.parent))
            os.replace(out, trash / out.name)
            os.replace(tmp, out)
            shutil.rmtree(trash)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix); on success it replaces ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(out)
    handle, name = tempfile.mkstemp(prefix=f"{_prefix(out)}{_owner_tag()}.", suffix=out.suffix, dir=out.parent)
    os.close(handle)
    tmp = Path(name)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the result is an ordinary readable file
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
