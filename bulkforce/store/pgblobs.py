"""PostgreSQL blobs: uploads, batch results and query results as rows of `bf_blob` in chunks,
so any API process or worker reads what another wrote. A query result is in chunks of exactly
CHUNK bytes, so that any byte range of it maps to chunk numbers (jobs/results.py serves pages
from any row offset)."""

from __future__ import annotations

import contextlib
import io
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO

from bulkforce.store.base import StoreError
from bulkforce.store.blobs import BlobGone, Blobs, ChunkReader, ResultWriter, UploadWriter
from bulkforce.store.pgsql import Q, lazy_commit, wrapped

if TYPE_CHECKING:
    from bulkforce.store.postgres import PostgresStore

CHUNK = 1 << 20
# An upload whose last chunk holds at most this many bytes is made the job's data in the same
# query string as the job row's update (PostgresStore.record_upload: one round trip, not four).
ONE_TRIP_BYTES = 64 * 1024


class PgResultWriter(ResultWriter):
    """Chunks of exactly CHUNK bytes, so a byte range maps to chunk numbers."""

    def __init__(self, blobs: PgBlobs, key: str) -> None:
        self.blobs, self.name = blobs, f"results:{key}:query"
        self.buf = bytearray()
        self.seq = 0

    def write(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= CHUNK:
            self.blobs.put_chunk(self.name, self.seq, bytes(self.buf[:CHUNK]))
            del self.buf[:CHUNK]
            self.seq += 1

    def commit(self, index: bytes) -> None:
        if self.buf:
            self.blobs.put_chunk(self.name, self.seq, bytes(self.buf))
            self.buf.clear()
        self.blobs.put_chunk(self.name + ":idx", 0, index)


class _PgUpload(UploadWriter):
    """Each full chunk is inserted by a thread of the upload's own while the next one arrives
    (at most one in flight): the request waits for the database once per upload instead of
    once per MiB (a 33 MB upload spent a third of its time waiting on these inserts)."""

    def __init__(self, blobs: PgBlobs, key: str) -> None:
        self.blobs, self.key = blobs, key
        # the start time in the name lets a sweep tell a crashed upload from a running one
        self.tmp = f"tmp:{key}:{int(time.time())}:{uuid.uuid4().hex}"
        self.buf = bytearray()
        self.seq = 0
        self._inserter: ThreadPoolExecutor | None = None  # made at the first full chunk
        self._inserting: Future[None] | None = None

    def _insert(self, seq: int, data: bytes) -> None:
        # Not durable on its own: the upload is acknowledged only after record_upload's
        # commit, and that commit's WAL flush covers every earlier one, these chunks included.
        with self.blobs.store._conns.borrow() as conn, wrapped():
            lazy_commit(conn, Q["blob_put_chunk"], (self.tmp, seq, data))

    def _settle(self) -> None:
        """Wait for the chunk in flight; its error, if any, is raised here."""
        inserting, self._inserting = self._inserting, None
        if inserting is not None:
            inserting.result()

    def _flush(self) -> None:
        self._settle()
        if self._inserter is None:
            self._inserter = ThreadPoolExecutor(1, thread_name_prefix="bulkforce-upload")
        self._inserting = self._inserter.submit(self._insert, self.seq, bytes(self.buf))
        self.seq += 1
        self.buf.clear()

    def _stop(self) -> None:
        try:
            self._settle()
        finally:
            if self._inserter is not None:
                self._inserter.shutdown()
                self._inserter = None

    def write(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= CHUNK:
            self._flush()

    def close(self) -> None:
        """The chunks in flight are in; the last (for a small upload the only) chunk waits
        for swap, which commits it together with the job's row: one commit fewer."""
        self._stop()

    def swap(self) -> None:
        self._stop()
        # Straight on this thread's connection, inside record_upload's transaction, in one
        # pipeline: one round trip, not four (a savepoint, its release and each statement);
        # a failure fails that transaction anyway.
        with self.blobs.store._conns.borrow() as conn, wrapped(), conn.pipeline():
            for query, params in self._swap():
                conn.execute(query, params)

    def _swap(self) -> list[tuple[str, Any]]:
        final = f"upload:{self.key}"
        statements: list[tuple[str, Any]] = [(Q["blob_delete"], (final,))]
        if self.seq:
            statements.append((Q["blob_rename"], (final, self.tmp)))
        if self.buf:
            statements.append((Q["blob_put_chunk"], (final, self.seq, bytes(self.buf))))
        return statements

    def swap_statements(self) -> list[tuple[str, Any]] | None:
        self._stop()
        # a larger last chunk would travel as text, twice its size
        return None if len(self.buf) > ONE_TRIP_BYTES else self._swap()

    def discard(self) -> None:
        with contextlib.suppress(StoreError):  # a chunk that failed to go in changes nothing
            self._stop()
        with self.blobs.store._write() as conn:
            conn.execute(Q["blob_delete"], (self.tmp,))


class PgBlobs(Blobs):
    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def chunk(self, name: str, seq: int) -> bytes | None:
        # Binary: PostgreSQL sends the bytes as they are instead of hex text twice their size,
        # which costs it and psycopg ~2 ms per MB (3x the time of the binary read).
        with self.store._conns.borrow() as conn, wrapped():
            row = conn.execute(Q["blob_chunk"], (name, seq), binary=True).fetchone()
        return None if row is None else bytes(row["data"])

    def put_chunk(self, name: str, seq: int, data: bytes) -> None:
        self.store._run(Q["blob_put_chunk"], (name, seq, data))

    def upload_writer(self, key: str) -> UploadWriter:
        return _PgUpload(self, key)

    def open(self, key: str) -> BinaryIO | None:
        name = f"upload:{key}"
        with self.store._conns.borrow() as conn, wrapped():  # binary: see chunk()
            row = conn.execute(Q["blob_open"], {"name": name}, binary=True).fetchone()
        if row is None or not row["n"]:
            return None
        first = None if row["first"] is None else bytes(row["first"])
        seqs = iter(range(int(row["n"])))  # all there were at open: no query to find the end

        def next_chunk() -> bytes | None:
            nonlocal first
            seq = next(seqs, None)
            if seq is None:
                return None
            if seq == 0:
                data, first = first, None
            else:
                data = self.chunk(name, seq)
            if data is None:
                raise BlobGone(f"{name} was deleted while being read")
            return data

        return io.BufferedReader(ChunkReader(next_chunk), buffer_size=CHUNK)

    def write_results(self, key: str, seq: int, success: bytes, failed: bytes) -> None:
        # Inside the worker's transaction, by another connection while it goes on (see
        # store/pgresults.py); its commit waits for them.
        prefix = f"results:{key}:{seq}"
        self.store.results.write((f"{prefix}:ok", success, f"{prefix}:err", failed))

    def read_results(self, key: str, kind: str, batches: int) -> Iterator[bytes]:
        """The batches' result blobs in order, each read by a thread while the one before
        is sent (a download waits for the database once, not once per batch)."""
        names = [f"results:{key}:{seq}:{kind}" for seq in range(batches)]
        if not names:
            return
        with ThreadPoolExecutor(1, thread_name_prefix="bulkforce-results") as reader:
            ahead = reader.submit(self.chunk, names[0], 0)
            for following in [*names[1:], None]:
                data = ahead.result()
                if following is not None:
                    ahead = reader.submit(self.chunk, following, 0)
                if data is None:
                    raise BlobGone(f"results of {key} were deleted while being read")
                if data:
                    yield data

    def result_writer(self, key: str) -> ResultWriter:
        return PgResultWriter(self, key)

    def result_index(self, key: str) -> bytes | None:
        return self.get(f"results:{key}:query:idx")

    def read_result(self, key: str, start: int, end: int) -> Iterator[bytes]:
        name = f"results:{key}:query"
        for seq in range(start // CHUNK, (end - 1) // CHUNK + 1 if end > start else 0):
            data = self.chunk(name, seq)
            if data is None:
                raise BlobGone(f"{name} was deleted while being read")
            base = seq * CHUNK
            yield data[max(start - base, 0) : end - base]

    def put(self, name: str, data: bytes) -> None:
        self.put_chunk(name, 0, data)

    def get(self, name: str) -> bytes | None:
        return self.chunk(name, 0)

    def sweep_orphans(self, is_batch: Callable[[str], bool], min_age: float) -> int:
        # Only unfinished uploads: a Bulk 1.0 payload is stored a moment before its batch row,
        # possibly by another process, and nothing dates it.
        with self.store._write() as conn:
            cur = conn.execute(Q["blob_delete_stale_uploads"], (int(time.time() - min_age),))
            return int(cur.rowcount)

    def delete(self, key: str) -> None:
        with self.store._write() as conn:
            for name in (f"upload:{key}", f"{key}.request", f"{key}.result"):
                conn.execute(Q["blob_delete"], (name,))
            conn.execute(Q["blob_delete_prefix"], (f"results:{key}:%",))
