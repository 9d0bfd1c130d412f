"""Keep glibc from giving big tensors back to the kernel after every use.

glibc serves an allocation above its mmap threshold (32 MiB at most) with a fresh ``mmap`` and
unmaps it on free. A training step whose activations are tens of MiB each then pays a page
fault for every 4 KiB page of every such tensor, on every step: at 5,000 demo sensors that was
2.2 million faults per step, and the step spent as much CPU time in the kernel as in PyTorch
(docs/benchmarks.md, "Scale"). With mmap off for malloc and a high trim threshold, freed blocks
stay in the heap and the next step reuses them. The memory is kept until the process ends,
which suits the CLI's commands: each runs one job and exits.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

# mallopt parameters from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = (
    2**31 - 1
)  # the largest value mallopt accepts: free memory stays unless over 2 GiB sits at the top
USER_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc on Linux (the only malloc these settings speak to), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def why_not_tunable() -> str | None:
    """Why this process's malloc is left alone (None when it can be tuned): not glibc, or the
    user tuned it through glibc's environment variables, whose choice wins."""
    if _glibc() is None:
        return "not glibc on Linux"
    user_set = [v for v in USER_SETTINGS if v in os.environ]
    return f"{user_set[0]} is set" if user_set else None


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse; True when it took effect (see why_not_tunable)."""
    if why_not_tunable() is not None:
        return False
    libc = _glibc()
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def give_back_freed_memory() -> bool:
    """Hand the heap's free pages back to the kernel now (glibc's ``malloc_trim``); True when done.

    For a loop whose big temporaries are freed and reallocated at shifting places in a heap
    that keeps freed memory (evaluation batches): without it, the kept heap grows with the
    number of iterations (an evaluation of a month of 1,950 VDs grew by about 2.5 MiB a
    batch). Other C libraries: nothing to do.
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
