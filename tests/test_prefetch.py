"""The worker's parse-ahead thread hands over exactly what the reader gives, in order."""

from __future__ import annotations

import io
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkforce.wire.csvrows import CsvFormatError, RowReader
from bulkforce.wire.prefetch import PREFETCH_MIN_BYTES, Inline, Prefetch, batches

CELLS = st.sampled_from(["a", "", "b c", '"q,1"', '"x""y"', 'a"b', '"ok" z', "é", '"l1\nl2"'])


def _reader(data: bytes) -> RowReader:
    # a long first value: bad UTF-8 at the end lies beyond the decoder's first read
    reader = RowReader(io.BytesIO(data), ",")
    reader.header()
    return reader


def _upload(rows: list[list[str]], tail: str) -> bytes:
    return (
        "h1,h2\n" + "p" * 20_000 + ",x\n" + "".join(",".join(r) + "\n" for r in rows) + tail
    ).encode()


def _direct(data: bytes, size: int) -> list[object]:
    reader = _reader(data)
    out: list[object] = []
    while True:
        try:
            chunk = reader.next_rows(size)
        except CsvFormatError as e:
            return [*out, ("error", str(e))]
        out.append((chunk, dict(reader.malformed)))
        if not chunk:
            return out


def _prefetched(data: bytes, size: int, kind: type[Inline | Prefetch] = Prefetch) -> list[object]:
    ahead = kind(_reader(data), size)
    out: list[object] = []
    try:
        while True:
            try:
                chunk, malformed = ahead.next_rows()
            except CsvFormatError as e:
                return [*out, ("error", str(e))]
            out.append((chunk, malformed))
            if not chunk:
                return out
    finally:
        ahead.close()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(CELLS, min_size=2, max_size=2), max_size=40),
    size=st.integers(1, 7),
    tail=st.sampled_from(["", "\n\n", 'x,"unterminated\n', "\xff"]),
)
def test_prefetch_gives_the_readers_chunks_malformed_rows_and_errors(
    rows: list[list[str]], size: int, tail: str
) -> None:
    data = _upload(rows, "") + tail.encode("latin-1")  # "\xff": invalid UTF-8 at the end
    assert _prefetched(data, size) == _direct(data, size)
    assert _prefetched(data, size, Inline) == _direct(data, size)


def test_only_large_uploads_get_a_parsing_thread() -> None:
    reader = _reader(_upload([["a", "b"]], ""))
    small = batches(reader, 10, PREFETCH_MIN_BYTES - 1)
    assert isinstance(small, Inline)
    large = batches(reader, 10, PREFETCH_MIN_BYTES)
    assert isinstance(large, Prefetch)
    large.close()


def test_close_midway_stops_the_parsing_thread() -> None:
    ahead = Prefetch(_reader(_upload([["a", "b"]] * 1000, "")), 10)
    first, _ = ahead.next_rows()
    assert first[1:] == [["a", "b"]] * 9
    ahead.close()
    assert not any(t.name == "bulkforce-parse" and t.is_alive() for t in threading.enumerate())


def test_an_exception_from_the_source_reaches_the_consumer() -> None:
    class Broken:
        def __init__(self) -> None:
            self.malformed: dict[int, str] = {}

        def next_rows(self, n: int) -> list[list[str]]:
            raise OSError("upload chunk deleted")

    ahead = Prefetch(Broken(), 10)
    with pytest.raises(OSError, match="upload chunk deleted"):
        ahead.next_rows()
    ahead.close()
