"""A cache for the dashboard's server threads: bounded in bytes, each value computed once.

Fifty clients scrubbing through a day ask for many origins at once. Holding one lock while a
value is computed made every request, cached or not, wait for whichever forecast was being
computed: a value is computed outside the lock, and only requests for that same key wait for it.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np


def size_of(value: Any) -> int:
    """Bytes a cached value holds (arrays and rendered JSON; anything else as Python sizes it)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return sys.getsizeof(value)


class _Pending:
    """A value being computed, for the requests that ask for it meanwhile."""

    def __init__(self):
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class BoundedCache:
    """Least recently used values, at most ``max_bytes`` in all (the newest is always kept)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._values: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._pending: dict[Any, _Pending] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key, compute: Callable[[], Any]):
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key][0]
            pending, computing = self._pending.get(key), False
            if pending is None:
                pending = self._pending[key] = _Pending()
                computing = True
        if not computing:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            return pending.value
        try:
            pending.value = compute()
        except BaseException as exc:
            pending.error = exc
            raise
        finally:
            with self._lock:
                del self._pending[key]
                if pending.error is None:
                    self._keep(key, pending.value)
            pending.done.set()
        return pending.value

    def _keep(self, key, value) -> None:
        size = size_of(value)
        self._values[key] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._values) > 1:
            _, (_, dropped) = self._values.popitem(last=False)
            self._bytes -= dropped
