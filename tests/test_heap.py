"""bulkforce.heap: big buffers keep mappings of their own after a bigger one was freed, so
the holes a large job leaves do not stay resident (the worker's peak RSS, bench.ingest), and
trim_heap hands what a job freed back to the OS."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading

import pytest

from bulkforce import heap

PROBE = """
import ctypes, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    from bulkforce.heap import fix_mmap_threshold
    fix_mmap_threshold()
big = bytearray(8 << 20)  # freed: glibc would raise its mmap threshold to 8 MiB
del big
before = libc.mallinfo2().hblkhd
chunk = bytearray(1 << 20)  # a 1 MiB upload chunk
print(libc.mallinfo2().hblkhd - before)
"""


def mapped_bytes_of_a_chunk(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return int(out.stdout)


@pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc 2.33+ (mallinfo2)"
)
def test_a_chunk_after_a_bigger_freed_buffer_gets_its_own_mapping() -> None:
    assert mapped_bytes_of_a_chunk("fixed") >= 1 << 20
    # what glibc does by default: the chunk lands on the heap (so the probe can tell)
    assert mapped_bytes_of_a_chunk("default") == 0


def test_trim_heap_returns_pages_a_thread_freed_to_the_os() -> None:
    if heap._TRIM is None:
        pytest.skip("no glibc malloc_trim on this platform: the worker does not trim here")

    def rss_mb() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20

    kept: list[bytes] = []

    def churn() -> None:  # ~120 MB of malloc'd blocks; every 200th stays, pinning the heap
        blocks = [bytes(2000) + b"%d" % i for i in range(60_000)]
        kept.extend(blocks[::200])

    t = threading.Thread(target=churn)
    t.start()
    t.join()
    before = rss_mb()
    heap.trim_heap()
    assert before - rss_mb() >= 50, (before, rss_mb())
    assert len(kept) == 300
