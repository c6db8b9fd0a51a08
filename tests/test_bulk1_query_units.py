"""Bulk 1.0 query units: PK chunking header parsing and Id-range arithmetic (query.md §5.1,
bulk-api.md §2.9-§2.10), and how a result file is cut into result ids (§2.8).

The header variants clients send, and the chunk boundaries, checked against the documented
example and, with hypothesis, for every start, end and chunk size.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkforce.engine import ids
from bulkforce.errors import ServiceError
from bulkforce.jobs.bulk1query import split_points
from bulkforce.jobs.pkchunk import MAX_CHUNK_SIZE, PkChunking, parse_header, ranges

ID15 = st.text(alphabet=ids.BASE62, min_size=15, max_size=15)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("true", PkChunking()),
        ("TRUE", PkChunking()),
        ("True", PkChunking()),
        ("chunkSize=1000", PkChunking(1000)),
        ("chunkSize=1000;", PkChunking(1000)),  # salesforce-bulk
        ("true; chunkSize=100000", PkChunking(100000)),  # singer / MeltanoLabs
        ("true; chunkSize=100000; parent=Account", PkChunking(100000, "Account")),
        ("chunkSize=5000;parent=Account", PkChunking(5000, "Account")),  # ForceCLI
        ("chunkSize=50000; startRow=00130000000xEft", PkChunking(50000, None, "00130000000xEft")),
        ("startRow=00130000000xEftMGH", PkChunking(start_row="00130000000xEft")),
        (f"chunkSize={MAX_CHUNK_SIZE}", PkChunking(MAX_CHUNK_SIZE)),
        ("  chunkSize = 7 ;  ", PkChunking(7)),
    ],
)
def test_header_variants_parse(header: str, expected: PkChunking) -> None:
    assert parse_header(header) == expected


@pytest.mark.parametrize("header", [None, "", "false", "FALSE", " false ; "])
def test_absent_or_false_header_disables(header: str | None) -> None:
    assert parse_header(header) is None


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (
            f"chunkSize={MAX_CHUNK_SIZE + 1}",
            "chunkSize 250001 is not a whole number from 1 to 250000",
        ),
        ("chunkSize=0", "chunkSize 0"),
        ("chunkSize=-5", "chunkSize -5"),
        ("chunkSize=abc", "chunkSize abc"),
        ("chunkSize=", "chunkSize needs a value"),
        ("startRow=nope", "startRow nope is not a valid"),
        ("maybe", "unknown option 'maybe'"),
        ("size=10", "unknown option 'size'"),
    ],
)
def test_bad_headers_have_clear_errors(header: str, needle: str) -> None:
    with pytest.raises(ServiceError) as e:
        parse_header(header)
    assert needle in e.value.message
    assert e.value.message.startswith("Invalid Sforce-Enable-PKChunking header: ")


def test_options_round_trip_through_json() -> None:
    opts = PkChunking(1234, "Account", "001R00000000001")
    assert PkChunking.loads(opts.dumps()) == opts
    assert PkChunking.loads(None) is None


def test_documented_boundaries() -> None:
    """The guide's example: 10,000,000 Accounts from 001300000000000 at 250,000 → 40 batches."""
    start = "001300000000000"
    last = ids.from_number(ids.number(start) + 10_000_000 - 1)
    got = list(ranges(start, last, 250_000))
    assert len(got) == 40
    assert got[0] == ("001300000000000", "00130000000132G")
    assert got[1] == ("00130000000132G", "00130000000264W")
    assert got[2] == ("00130000000264W", "00130000000396m")
    assert got[-1] == ("00130000000euQ4", "00130000000fxSK")


@given(ID15)
def test_number_round_trips(id15: str) -> None:
    assert ids.from_number(ids.number(id15)) == id15
    assert ids.number(ids.to18(id15)) == ids.number(id15)  # the suffix is ignored


@given(ID15, ID15)
def test_number_order_is_string_order(a: str, b: str) -> None:
    assert (ids.number(a) < ids.number(b)) == (a < b)


@given(ID15, st.integers(1, MAX_CHUNK_SIZE), st.integers(0, 300), st.floats(0, 1, exclude_max=True))
def test_ranges_cover_every_id_once(first: str, size: int, whole: int, part: float) -> None:
    span = whole * size + int(part * size)  # the last Id anywhere in the (whole+1)-th chunk
    start = ids.number(first)
    if start + span >= ids.ID15_SPACE - 1:
        return
    last = ids.from_number(start + span)
    got = [(ids.number(lo), ids.number(hi)) for lo, hi in ranges(first, last, size)]
    assert got[0][0] == start
    assert all(hi - lo == size for lo, hi in got)  # stepped by chunkSize in Id space
    assert all(a[1] == b[0] for a, b in pairwise(got))  # contiguous
    assert got[-1][1] > start + span >= got[-1][0]  # the last Id falls in the last range
    assert len(got) == span // size + 1


def test_ranges_never_empty() -> None:
    assert list(ranges("001R00000000100", "001R00000000001", 10)) == [
        ("001R00000000100", "001R0000000010A")
    ]


@given(st.lists(st.integers(1, 5000), max_size=60), st.integers(1, 20_000))
def test_result_parts_cover_the_file_once_within_the_limit(blocks: list[int], limit: int) -> None:
    """Result ids are byte ranges cut at indexed rows: together exactly the file, in order, each
    at most `limit` bytes unless one block of rows alone is larger."""
    offsets = [sum(blocks[:i]) for i in range(len(blocks))]
    size = sum(blocks)
    parts = split_points(offsets, size, limit)
    assert parts[0][0] == 0 and parts[-1][1] == size
    assert all(a[1] == b[0] for a, b in pairwise(parts))
    starts = set(offsets) | {size}
    for start, end in parts:
        assert start in starts and end in starts
        inner = [o for o in offsets if start < o < end]
        assert end - start <= limit or not inner  # over the limit only as a single block
