"""CSV in and out. Uploads are read as a stream of rows; results are rendered fully quoted."""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Iterable, Sequence

from bulkforce.engine.outcome import Outcome
from bulkforce.wire.csvrows import CsvFormatError, RowReader

__all__ = [
    "CsvFormatError",
    "RowReader",
    "UploadScanner",
    "quoted",
    "quoted_bodies",
    "render_outcome",
    "render_rows",
]


# Salesforce's limits (spec §3.14): a header row of at most 32,000 characters and a record of
# at most 400,000. A physical line is part of one record, so a longer line is a longer record.
MAX_HEADER_CHARS = 32_000
MAX_RECORD_CHARS = 400_000


# UTF-8 continuation bytes: a valid UTF-8 text has as many characters as other bytes
_CONTINUATION = bytes(range(0x80, 0xC0))


def _chars(data: bytes) -> int:
    """Characters in `data`, valid UTF-8 (a character cut at either end counts where its
    first byte is)."""
    return len(data.translate(None, _CONTINUATION))


class UploadScanner:
    """Cheap checks while an upload streams in: valid UTF-8, balanced quotes, and the header
    row and records within Salesforce's sizes.

    An upload that fails any can never load, so its job fails before touching a record rather
    than halfway through, and before a huge header or row is ever parsed into cells (a 22 MB
    header row or 30 MB of one-character cells would take hundreds of MB as Python lists).
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.size = 0
        self.quotes = 0
        self.lines = 0
        self.last = b""
        self.problem: str | None = None
        self._line = 0  # characters of the physical line in progress
        self._in_header = True

    def feed(self, data: bytes) -> None:
        if self.problem is None:
            try:
                self._decoder.decode(data)  # for its errors only
            except UnicodeDecodeError as e:
                self.problem = f"InvalidBatch : Invalid UTF-8 byte sequence at byte offset {self.size + e.start}"
            else:
                self._measure(data)
        self.quotes += data.count(b'"')
        self.lines += data.count(b"\n")
        self.size += len(data)
        if data:
            self.last = data[-1:]

    @property
    def data_rows(self) -> int:
        """Lines after the header (a last line without a line break counts too)."""
        lines = self.lines + (1 if self.last not in (b"", b"\n") else 0)
        return max(lines - 1, 0)

    def _measure(self, data: bytes) -> None:
        """Line lengths in characters, from the bytes: the pieces at the ends of `data` are
        counted, the lines wholly inside it only where one may be too long (_check_inner).
        Splitting every upload into lines of text took ~40% of the API's time receiving it
        (165 MB: 0.95 s)."""
        first = data.find(b"\n")
        if first < 0:
            self._line += _chars(data)
        else:
            self._check_line(self._line + _chars(data[:first]))
            last = data.rfind(b"\n")
            self._check_inner(data, first, last)
            self._line = _chars(data[last + 1 :])
        # a line still in progress is checked as it grows, so nothing waits for its end
        if self.problem is None and self._line:
            self._check_line(self._line, finished=False)

    def _check_inner(self, data: bytes, first: int, last: int) -> None:
        """The lines wholly between the line breaks at `first` and `last`. A line has no more
        characters than bytes, so only one longer than MAX_RECORD_CHARS bytes is counted:
        each step looks for the last line break within that many bytes (C-level), and a
        stretch without one is such a line. Splitting every ~1 MB piece of an upload into
        lines and counting each took half of the API's CPU receiving it (165 MB: ~0.5 s)."""
        at = first
        while last - at - 1 > MAX_RECORD_CHARS and self.problem is None:
            brk = data.rfind(b"\n", at + 1, at + MAX_RECORD_CHARS + 2)
            if brk < 0:  # the line after `at` is longer than MAX_RECORD_CHARS bytes
                brk = data.find(b"\n", at + 1)
                self._check_line(_chars(data[at + 1 : brk]))
            at = brk

    def _check_line(self, chars: int, finished: bool = True) -> None:
        if self.problem is not None:
            return
        if self._in_header:
            if chars - 1 > MAX_HEADER_CHARS:  # its line ending or BOM may be counted
                self.problem = (
                    f"InvalidBatch : The header row exceeds the limit of "
                    f"{MAX_HEADER_CHARS:,} characters"
                )
            self._in_header = not finished
        elif chars - 1 > MAX_RECORD_CHARS:
            self.problem = (
                f"InvalidBatch : A record exceeds the limit of {MAX_RECORD_CHARS:,} characters"
            )

    def finish(self) -> str | None:
        if self.problem is None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.problem = "InvalidBatch : Invalid UTF-8: the upload ends inside a character"
        if self.problem is None and self.quotes % 2:
            self.problem = "InvalidBatch : Failed to parse CSV: unbalanced double quote (a quoted field is never closed)"
        return self.problem


def quoted(values: Sequence[str], delimiter: str) -> str:
    """Every value double-quoted (jsforce parses results with all six delimiters at once)."""
    # Join on NUL first so quote-doubling is one C-level replace per row, not one per value.
    joined = "\x00".join(values)
    if "\x00" in joined.replace("\x00", "", len(values) - 1):  # a value holds a NUL itself
        return '"' + f'"{delimiter}"'.join(v.replace('"', '""') for v in values) + '"'
    if '"' in joined:
        joined = joined.replace('"', '""')
    return '"' + joined.replace("\x00", f'"{delimiter}"') + '"'


def result_header(kind: str, header: Sequence[str], delimiter: str, newline: str) -> bytes:
    lead = {"success": ["sf__Id", "sf__Created"], "failed": ["sf__Id", "sf__Error"]}.get(kind, [])
    parts = [f'"{c}"' for c in lead] + list(header)
    return (delimiter.join(parts) + newline).encode()


def quoted_bodies(
    rows: Sequence[Sequence[str]], delimiter: str, newline: str
) -> list[bytes] | None:
    """Each row as a result line ends after its sf__ columns, in UTF-8: every value quoted,
    then the newline. Made by one join, one encode, three replaces and a split, on the
    worker's prefetch thread, so that writing a batch's results is one join. The replaces
    and the split work on the UTF-8 bytes, not the text: the result is bytes anyway, and
    text with a character beyond Latin-1 is 2-4 bytes per character in memory (10,000 bench
    rows: 15 -> 11 ms, and the join in render_outcome 7 -> 2 ms). None if a value contains
    the control characters it joins on: render_outcome then quotes row by row. (A lone
    surrogate, which has no UTF-8, is never here: CSV text is decoded from UTF-8, and a JSON
    batch's row holding one has failed, so its results are rendered row by row.)"""
    if not rows:
        return []
    big = "\x01".join(map("\x00".join, rows)).encode()
    if big.count(b"\x00") != sum(map(len, rows)) - len(rows) or big.count(b"\x01") != len(rows) - 1:
        return None
    quote, end = b'"', newline.encode()
    big = big.replace(quote, b'""').replace(b"\x00", quote + delimiter.encode() + quote)
    big = big.replace(b"\x01", quote + end + b"\x01" + quote)
    return (quote + big + quote + end).split(b"\x01")


# failedResults carry the record's Id (update, delete, upsert by Id) from API 53.0 on; jobs of
# older versions leave sf__Id empty on every failed row (spec §1.1).
FAILED_IDS_SINCE = 53.0


def render_outcome(
    rows: Sequence[Sequence[str]], outcome: Outcome, delimiter: str, newline: str,
    failed_ids: bool = True, bodies: Sequence[bytes] | None = None,
) -> tuple[bytes, bytes]:  # fmt: skip
    """The chunk's successfulResults and failedResults lines (no header); `failed_ids` False
    leaves sf__Id empty in the failed ones; `bodies`: quoted_bodies(rows) if already made."""
    if not any(outcome.errors):
        bodies = quoted_bodies(rows, delimiter, newline) if bodies is None else bodies
        if bodies is not None:
            sep = f'"{delimiter}"'
            flags = (f'{sep}true"{delimiter}'.encode(), f'{sep}false"{delimiter}'.encode())
            marks = [flags[0] if c else flags[1] for c in outcome.created]
            ids = "\x00".join(outcome.ids).encode().split(b"\x00")  # Ids: ASCII, no NUL
            parts = zip(itertools.repeat(b'"'), ids, marks, bodies)
            return b"".join(itertools.chain.from_iterable(parts)), b""
    ok: list[str] = []
    bad: list[str] = []
    sep = f'"{delimiter}"'
    for row, rid, created, err in zip(
        rows, outcome.ids, outcome.created, outcome.errors, strict=True
    ):
        body = quoted(row, delimiter)
        if err is None:
            ok.append(f'"{rid}{sep}{"true" if created else "false"}"{delimiter}{body}')
        else:
            msg = err.render().replace('"', '""')
            bad.append(f'"{rid if failed_ids else ""}{sep}{msg}"{delimiter}{body}')
    end = newline
    return (
        (end.join(ok) + end).encode() if ok else b"",
        (end.join(bad) + end).encode() if bad else b"",
    )


def render_rows(rows: Iterable[Sequence[str]], delimiter: str, newline: str) -> bytes:
    return "".join(quoted(r, delimiter) + newline for r in rows).encode()
