"""The C heap (glibc malloc) of bulkforce's processes: what it keeps, and when it gives it back.

A large job allocates and frees big buffers all the time: 1 MiB upload chunks, a batch's
~3.5 MB pickle from the prepare process, SQLite's bound parameters and statements. glibc puts
a buffer of 128 KiB or more in its own mapping, returned to the OS on free, but raises that
threshold to the size of each such buffer freed (up to 32 MiB): after the first few batches
every big buffer lands on the heap, whose freed holes stay resident. Measured on the 1M-row
SQLite insert with --worker-process: the worker process's heap held 25-62 MB of free memory
beside 51-94 MB in use, and the server's tree peaked at 316-320 MB; with the threshold fixed
at 256 KiB, 283 MB. The price is a mapping and its page faults per big buffer: on
PostgreSQL, whose peak is well under 300 MB without it, it cost ~6% of a 1M-row insert, so
only SQLite's processes fix it (Store.fixed_mmap_threshold; the prepare process is SQLite's
only). Without glibc (musl, macOS) both calls do nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 256 * 1024


def _glibc(name: str) -> Callable[[int], int] | None:
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_TRIM = _glibc("malloc_trim")
_MALLOPT = _glibc("mallopt")


def fix_mmap_threshold() -> None:
    """Buffers of MMAP_THRESHOLD bytes and more get mappings of their own, always (setting
    the threshold turns off glibc's raising of it). Called once, when a process starts."""
    if _MALLOPT is not None:
        _MALLOPT(M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # type: ignore[call-arg]


def trim_heap() -> None:
    """Hand the heap a large job freed back to the OS. glibc keeps freed pages, in every
    malloc arena a thread used: without this, an idle server after a 1M-row insert held
    ~280 MB, and the next job's peak stacked on it. The worker calls it after a large job,
    the prepare process after each job."""
    if _TRIM is not None:
        _TRIM(0)
