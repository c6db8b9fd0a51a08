"""Job data on disk: uploads (streamed to a temp file, renamed into place when whole) and the
result chunks of each internal batch, written before the batch's database commit."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class FileBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.csv"

    def open_temp(self, key: str) -> tuple[BinaryIO, Path]:
        tmp = self.root / f"{key}.{os.getpid()}.{id(self)}.part"
        return tmp.open("wb"), tmp

    def commit(self, tmp: Path, key: str) -> None:
        os.replace(tmp, self.path(key))

    def open(self, key: str) -> BinaryIO | None:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            return None

    def _results(self, key: str) -> Path:
        return self.root / f"{key}.results"

    def write_results(self, key: str, seq: int, success: bytes, failed: bytes) -> None:
        folder = self._results(key)
        folder.mkdir(exist_ok=True)
        # Overwrites what a crashed attempt at the same batch may have left.
        (folder / f"{seq}.ok").write_bytes(success)
        (folder / f"{seq}.err").write_bytes(failed)

    def read_results(self, key: str, kind: str, batches: int) -> Iterator[bytes]:
        """The first `batches` chunks of one kind ("ok" or "err"), streamed in order."""
        folder = self._results(key)
        for seq in range(batches):
            try:
                with (folder / f"{seq}.{kind}").open("rb") as f:
                    while block := f.read(1 << 20):
                        yield block
            except FileNotFoundError:
                return  # deleted while streaming

    def put(self, name: str, data: bytes) -> None:
        """A small whole file (Bulk 1.0 batch payloads and result documents, ≤ 10 MB)."""
        tmp = self.root / f"{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.root / name)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
        shutil.rmtree(self._results(key), ignore_errors=True)
