"""CSV in and out. Uploads are read as a stream of rows; results are rendered fully quoted."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

from bulkforce.engine.dml import Outcome

csv.field_size_limit(16 * 1024 * 1024)


class CsvFormatError(Exception):
    """The upload cannot be split into rows; str(e) is a job-level errorMessage."""


def iter_rows(raw: BinaryIO, delimiter: str) -> Iterator[list[str]]:
    """Rows of an upload, BOM stripped, blank lines skipped. LF and CRLF both end a row."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="", errors="strict")
    reader = csv.reader(text, delimiter=delimiter, quotechar='"', strict=True)
    try:
        for row in reader:
            if row:
                yield row
    except csv.Error as e:
        raise CsvFormatError(
            f"InvalidBatch : Failed to parse CSV near line {reader.line_num}: {e}"
        ) from None
    except UnicodeDecodeError as e:
        raise CsvFormatError(f"InvalidBatch : Invalid UTF-8 in upload: {e.reason}") from None


class UploadScanner:
    """Cheap checks while an upload streams in: valid UTF-8 and balanced quotes.

    An upload that fails either can never parse, so its job fails before touching a record
    rather than halfway through.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.size = 0
        self.quotes = 0
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        if self.problem is None:
            try:
                self._decoder.decode(data)
            except UnicodeDecodeError as e:
                self.problem = f"InvalidBatch : Invalid UTF-8 byte sequence at byte offset {self.size + e.start}"
        self.quotes += data.count(b'"')
        self.size += len(data)

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


def render_outcome(
    rows: Sequence[Sequence[str]], outcome: Outcome, delimiter: str, newline: str
) -> tuple[bytes, bytes]:
    """The chunk's successfulResults and failedResults lines (no header)."""
    ok: list[str] = []
    bad: list[str] = []
    sep = f'"{delimiter}"'
    for row, rid, created, err in zip(
        rows, outcome.ids, outcome.created, outcome.errors, strict=True
    ):
        body = quoted(row, delimiter) if row else '""'
        if err is None:
            ok.append(f'"{rid}{sep}{"true" if created else "false"}"{delimiter}{body}')
        else:
            msg = err.render().replace('"', '""')
            bad.append(f'"{rid}{sep}{msg}"{delimiter}{body}')
    end = newline
    return (
        (end.join(ok) + end).encode() if ok else b"",
        (end.join(bad) + end).encode() if bad else b"",
    )


def render_rows(rows: Iterable[Sequence[str]], delimiter: str, newline: str) -> bytes:
    return "".join(quoted(r, delimiter) + newline for r in rows).encode()
