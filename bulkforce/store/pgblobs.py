"""A query result in PostgreSQL: rows of `bf_blob` in chunks of exactly CHUNK bytes, so that
any byte range of the result maps to chunk numbers (jobs/results.py serves pages from any row
offset) and any API process serves any page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bulkforce.store.blobs import ResultWriter

if TYPE_CHECKING:
    from bulkforce.store.postgres import PgBlobs

CHUNK = 1 << 20


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
