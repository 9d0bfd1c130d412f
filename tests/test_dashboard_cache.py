"""The dashboard's cache (dashboard/cache.py): bounded in bytes, least recently used out first,
one computation per key however many threads ask, and a slow computation holds up no one else."""

import threading

import numpy as np
import pytest

from social_xlstm.dashboard.cache import BoundedCache


def test_the_least_recently_used_values_go_first_past_the_byte_bound():
    cache = BoundedCache(max_bytes=25)
    for key in "abc":
        cache.get(key, lambda: b"x" * 10)
    assert len(cache) == 2  # 30 bytes > 25: "a" went
    cache.get("b", lambda: pytest.fail("b is cached"))  # b is now the most recent
    cache.get("d", lambda: np.zeros(10, dtype=np.uint8))
    computed = []
    cache.get("c", lambda: computed.append("c") or b"")  # c was the least recent: gone
    cache.get("b", lambda: pytest.fail("b is still cached"))
    assert computed == ["c"]
    cache.get("big", lambda: b"x" * 100)  # the newest is kept even alone over the bound
    assert len(cache) == 1


def test_a_slow_computation_blocks_only_the_requests_for_its_own_key():
    cache = BoundedCache(max_bytes=1000)
    cache.get("cached", lambda: b"ready")
    release, started, calls = threading.Event(), threading.Event(), []

    def slow():
        calls.append(1)
        started.set()
        assert release.wait(30)
        return b"slow"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("slow", slow))) for _ in range(4)]
    for t in threads:
        t.start()
    assert started.wait(30)
    answered = []
    other = threading.Thread(target=lambda: answered.append(cache.get("cached", lambda: b"again")))
    other.start()
    other.join(timeout=5)
    assert answered == [b"ready"], "a cached value waited for another key's computation"
    release.set()
    for t in threads:
        t.join(timeout=30)
    assert results == [b"slow"] * 4 and calls == [1]


def test_a_failed_computation_reaches_every_waiter_and_is_not_kept():
    cache = BoundedCache(max_bytes=1000)
    with pytest.raises(ValueError):
        cache.get("k", lambda: (_ for _ in ()).throw(ValueError("bad window")))
    assert len(cache) == 0
    assert cache.get("k", lambda: b"ok") == b"ok"
