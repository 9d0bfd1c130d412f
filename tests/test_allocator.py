"""reuse_freed_memory: a big tensor freed and allocated again must not fault its pages in anew;
give_back_freed_memory: what such a heap keeps goes back to the kernel on request."""

import subprocess
import sys

import pytest

from social_xlstm.allocator import reuse_freed_memory, why_not_tunable

# Child: allocate, touch and free a 64 MiB tensor 20 times, after as many rounds of warm-up (the
# heap grows for the first few, while small objects settle into the freed space); print the
# minor page faults of the timed rounds.
CHILD = """
import resource, sys, torch
from social_xlstm.allocator import reuse_freed_memory
took = reuse_freed_memory() if sys.argv[1] == "reuse" else None
for _ in range(20):
    x = torch.ones(16 * 2**20)
    del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    x = torch.ones(16 * 2**20)
    del x
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], check=True, capture_output=True, text=True).stdout
    took, count = out.split()
    return took, int(count)


@pytest.mark.skipif(why_not_tunable() is not None, reason=f"malloc left alone: {why_not_tunable()}")
def test_freed_tensors_are_reused_instead_of_faulted_in_again():
    pages = 20 * 64 * 2**20 // 4096  # what 20 fresh 64 MiB tensors fault in
    took, reused = faults("reuse")
    _, fresh = faults("default")
    assert took == "True"
    assert fresh > pages // 2  # glibc's default: every allocation is a new mmap
    assert reused < pages // 100


def test_users_own_malloc_settings_win(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "65536")
    assert why_not_tunable() == "MALLOC_MMAP_MAX_ is set"
    assert reuse_freed_memory() is False


def test_the_cli_tunes_malloc_for_torch_commands_only(monkeypatch):
    """Data commands free each big array once; keeping the memory would only raise their peak."""
    import social_xlstm.cli.commands as cli

    calls = []
    monkeypatch.setattr(cli, "reuse_freed_memory", lambda: calls.append(True))
    assert cli.main(["data", "import", "--help"]) == 0 and calls == []
    assert cli.main(["evaluate", "--help"]) == 0 and calls == [True]


# Child: in a heap that keeps freed memory, free 256 MiB of small-ish tensors (each below glibc's
# largest mmap threshold, so they live in the heap in any mode), then give the memory back;
# print the resident MiB after freeing and after giving back.
GIVE_BACK = """
import sys, torch
from social_xlstm.allocator import give_back_freed_memory, reuse_freed_memory
def resident_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
reuse_freed_memory()
keep = [torch.ones(2**18) for _ in range(256)]  # 256 x 1 MiB
del keep
freed = resident_mib()
print(give_back_freed_memory(), freed - resident_mib())
"""


@pytest.mark.skipif(why_not_tunable() is not None, reason=f"malloc left alone: {why_not_tunable()}")
def test_freed_memory_is_given_back_on_request():
    out = subprocess.run([sys.executable, "-c", GIVE_BACK], check=True, capture_output=True, text=True).stdout
    done, released_mib = out.split()
    assert done == "True" and float(released_mib) > 200
