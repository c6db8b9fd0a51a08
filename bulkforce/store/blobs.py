"""Job data outside the record tables: Bulk 2.0 uploads (streamed in, whole only once
committed), the result chunks of each internal batch, and Bulk 1.0 batch payloads and result
documents. SQLite keeps them as files in the data dir; PostgreSQL in the database, so any API
process on any host can serve any job (store/pgblobs.py)."""

from __future__ import annotations

import abc
import io
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


class BlobGone(Exception):
    """Data deleted (job DELETE, retention) while it was being read. Raised mid-download so the
    connection is aborted: ending the stream cleanly would pass a truncated file as whole."""


class ChunkReader(io.RawIOBase):
    """A stream over the chunks `next_chunk` returns (None: the end), never whole in memory
    and with no copy of a chunk's unread rest. Wrap it in io.BufferedReader."""

    def __init__(self, next_chunk: Callable[[], bytes | bytearray | None]) -> None:
        self._next = next_chunk
        self._pending = memoryview(b"")
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._pending and not self.ended:
            data = self._next()
            if data is None:
                self.ended = True
            else:
                self._pending = memoryview(data)
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def drain(self) -> None:
        """Skip to the end without keeping what is read."""
        self._pending = memoryview(b"")
        while not self.ended:
            self.ended = self._next() is None


class UploadWriter(abc.ABC):
    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Every byte written is stored (not yet the job's data)."""

    @abc.abstractmethod
    def swap(self) -> None:
        """Make the closed upload the job's data, replacing any earlier one. Called by the
        store inside the transaction that checks the job is still Open (Store.record_upload),
        so a job that is closed, aborted or deleted meanwhile keeps the data it had."""

    def swap_statements(self) -> list[tuple[str, Any]] | None:
        """What `swap` would do as SQL statements (and their values), for a store that sends
        them with its own in one round trip; None: call `swap`. After `close`."""
        return None

    @abc.abstractmethod
    def discard(self) -> None: ...


class ResultWriter(abc.ABC):
    """A query result written once, front to back; readable by byte range once committed."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self, index: bytes) -> None:
        """Make the data and its (small) row index the key's query result."""


class Blobs(abc.ABC):
    @abc.abstractmethod
    def upload_writer(self, key: str) -> UploadWriter: ...

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO | None:
        """A job's committed upload as a stream, or None if it has none."""

    @abc.abstractmethod
    def write_results(self, key: str, seq: int, success: bytes, failed: bytes) -> None:
        """One internal batch's result lines; written before the batch's commit, so a chunk
        counts only once the batch is done (readers stop at `batches_done`)."""

    @abc.abstractmethod
    def read_results(self, key: str, kind: str, batches: int) -> Iterator[bytes]:
        """The first `batches` chunks of one kind ("ok" or "err"), in order."""

    @abc.abstractmethod
    def result_writer(self, key: str) -> ResultWriter:
        """Where a query job or batch writes its result (deleted with the key)."""

    @abc.abstractmethod
    def result_index(self, key: str) -> bytes | None:
        """The committed result's index, or None if there is no committed result."""

    @abc.abstractmethod
    def read_result(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of the committed result, in blocks of at most 1 MiB."""

    @abc.abstractmethod
    def put(self, name: str, data: bytes) -> None:
        """A small whole blob (Bulk 1.0 payloads and result documents, ≤ 10 MB)."""

    @abc.abstractmethod
    def get(self, name: str) -> bytes | None: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Everything stored under a job or batch id."""

    @abc.abstractmethod
    def sweep_orphans(self, is_batch: Callable[[str], bool], min_age: float) -> int:
        """Delete what a crash left behind, untouched for `min_age` seconds: unfinished
        uploads, and Bulk 1.0 payloads of batches that were never recorded. Returns how many
        were deleted."""


class _FileUpload(UploadWriter):
    def __init__(self, blobs: FileBlobs, key: str) -> None:
        self.blobs, self.key = blobs, key
        self.tmp = blobs.root / f"{key}.{uuid.uuid4().hex}.part"
        self.file = self.tmp.open("wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def close(self) -> None:
        self.file.close()

    def swap(self) -> None:
        os.replace(self.tmp, self.blobs.path(self.key))

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)


class _FileResult(ResultWriter):
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.tmp = folder / f"query.{uuid.uuid4().hex}.part"
        self.file = self.tmp.open("wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self, index: bytes) -> None:
        self.file.close()
        os.replace(self.tmp, self.folder / "query.csv")
        tmp = self.folder / f"query.{uuid.uuid4().hex}.idx.part"
        tmp.write_bytes(index)
        os.replace(tmp, self.folder / "query.idx")


class FileBlobs(Blobs):
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.csv"

    def upload_writer(self, key: str) -> UploadWriter:
        return _FileUpload(self, key)

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
        folder = self._results(key)
        for seq in range(batches):
            try:
                with (folder / f"{seq}.{kind}").open("rb") as f:
                    while block := f.read(1 << 20):
                        yield block
            except FileNotFoundError:
                raise BlobGone(f"results of {key} were deleted while being read") from None

    def result_writer(self, key: str) -> ResultWriter:
        return _FileResult(self._results(key))

    def result_index(self, key: str) -> bytes | None:
        try:
            return (self._results(key) / "query.idx").read_bytes()
        except FileNotFoundError:
            return None

    def read_result(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            f = (self._results(key) / "query.csv").open("rb")
        except FileNotFoundError:
            raise BlobGone(f"the query result of {key} was deleted") from None
        with f:
            f.seek(start)
            left = end - start
            while left > 0:
                block = f.read(min(left, 1 << 20))
                if not block:
                    raise BlobGone(f"the query result of {key} is shorter than its index")
                left -= len(block)
                yield block

    def put(self, name: str, data: bytes) -> None:
        tmp = self.root / f"{name}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.root / name)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def sweep_orphans(self, is_batch: Callable[[str], bool], min_age: float) -> int:
        cutoff = time.time() - min_age
        deleted = 0
        for path in self.root.iterdir():
            try:
                if path.stat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            if path.suffix in (".part", ".tmp"):
                path.unlink(missing_ok=True)
                deleted += 1
            elif path.suffix == ".request" and not is_batch(path.stem):
                self.delete(path.stem)
                deleted += 1
        return deleted

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
        shutil.rmtree(self._results(key), ignore_errors=True)
        for suffix in (".request", ".result"):
            (self.root / f"{key}{suffix}").unlink(missing_ok=True)
