"""Peak memory of a server process while something runs (not a test module)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
from conftest import Server


@dataclass
class Peak:
    base: int
    peak: int

    @property
    def growth(self) -> int:
        return self.peak - self.base


@contextmanager
def peak_rss(srv: Server, every: float = 0.01) -> Iterator[Peak]:
    """Samples the server's RSS until the block ends; `.peak` is the highest seen."""
    assert srv.proc is not None
    proc = psutil.Process(srv.proc.pid)
    seen = Peak(proc.memory_info().rss, proc.memory_info().rss)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.peak = max(seen.peak, proc.memory_info().rss)
            time.sleep(every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join()
