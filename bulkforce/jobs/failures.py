"""A job's failed rows grouped by error code: how many, and the first few of each. Read from
the failed-results stream one chunk at a time, so a large result never sits in memory."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bulkforce.wire.csvio import CsvFormatError, RowReader


@dataclass
class FailureGroup:
    code: str
    count: int = 0
    # the first rows with this code, as the failed results carry them (sf__Id, sf__Error, ...)
    rows: list[list[str]] = field(default_factory=list)


class _ChunkStream(io.RawIOBase):
    """A readable file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = chunk
        n = min(len(buf), len(self._rest))
        buf[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def error_code(error: str) -> str:
    """`REQUIRED_FIELD_MISSING:Required fields are missing: [X]:X --` -> its code."""
    code, sep, _ = error.partition(":")
    return code.strip() if sep and code.strip() else error.strip() or "(no error text)"


class Grouper:
    """Failed rows by error code: a count per code and the first `keep` rows of each."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.groups: dict[str, FailureGroup] = {}

    def add(self, error: str, row: list[str]) -> None:
        code = error_code(error)
        group = self.groups.setdefault(code, FailureGroup(code))
        group.count += 1
        if len(group.rows) < self.keep:
            group.rows.append(row)

    def result(self) -> list[FailureGroup]:
        return sorted(self.groups.values(), key=lambda g: (-g.count, g.code))


def group_failures(
    chunks: Iterable[bytes], delimiter: str, keep: int = 5
) -> tuple[list[str], list[FailureGroup]]:
    """(header, groups by descending count) of a failed-results CSV (`sf__Error` column)."""
    reader = RowReader(io.BufferedReader(_ChunkStream(chunks)), delimiter)
    grouper = Grouper(keep)
    try:
        header = next(reader, None)
        if header is None:
            return [], []
        col = next((i for i, h in enumerate(header) if h == "sf__Error"), 1)
        for row in reader:
            grouper.add(row[col] if col < len(row) else "", row)
    except CsvFormatError:
        return [], []
    return header, grouper.result()
