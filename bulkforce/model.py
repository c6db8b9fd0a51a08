"""Plain data shared by every layer: the job record and its enums. No behaviour, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class JobState(StrEnum):
    OPEN = "Open"
    CLOSED = "Closed"  # Bulk 1.0 only
    UPLOAD_COMPLETE = "UploadComplete"
    IN_PROGRESS = "InProgress"
    JOB_COMPLETE = "JobComplete"
    FAILED = "Failed"
    ABORTED = "Aborted"

    @property
    def terminal(self) -> bool:
        return self in (JobState.JOB_COMPLETE, JobState.FAILED, JobState.ABORTED)


class Operation(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"
    HARD_DELETE = "hardDelete"
    QUERY = "query"
    QUERY_ALL = "queryAll"

    @property
    def is_query(self) -> bool:
        return self in (Operation.QUERY, Operation.QUERY_ALL)


COLUMN_DELIMITERS: dict[str, str] = {
    "BACKQUOTE": "`",
    "CARET": "^",
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "TAB": "\t",
}
LINE_ENDINGS: dict[str, str] = {"LF": "\n", "CRLF": "\r\n"}

# Salesforce splits an ingest upload into internal batches of this many records (spec §3.13).
BATCH_SIZE = 10_000
# ... or fewer, once they hold this many values: memory per batch is bounded by its cells,
# not its rows (100 rows of 150,000 one-character values grew the server by ~310 MB as one
# batch; ~62-76 MB cut at 1,000,000 values: tests/test_memory_bounded.py). Where a batch ends does
# not show: resuming and unprocessed rows count records processed, not batches.
BATCH_CELLS = 1_000_000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(ts: dt.datetime) -> str:
    """How timestamps are stored: UTC, milliseconds, `Z` (what Salesforce CSV shows)."""
    ts = ts.astimezone(dt.UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass
class Job:
    id: str
    object: str
    operation: Operation
    created_by: str
    created_date: dt.datetime
    system_modstamp: dt.datetime
    api_version: str
    state: JobState = JobState.OPEN
    job_type: str = "V2Ingest"
    external_id_field: str | None = None
    assignment_rule_id: str | None = None
    content_type: str = "CSV"
    line_ending: str = "LF"
    column_delimiter: str = "COMMA"
    concurrency_mode: str = "Parallel"
    error_message: str | None = None
    records_processed: int = 0
    records_failed: int = 0
    retries: int = 0
    total_processing_time: int = 0
    api_active_processing_time: int = 0
    apex_processing_time: int = 0
    upload_count: int = 0
    upload_bytes: int = 0
    # Set at upload time by a cheap streaming scan: a job whose upload cannot be valid CSV
    # fails before any record is applied.
    upload_problem: str | None = None
    # the upload's data lines, counted as it streams in: a progress estimate (a quoted value
    # holding a line break counts twice)
    upload_rows: int | None = None
    batches_done: int = 0
    header: list[str] | None = field(default=None)
    # Bulk 1.0 transformation spec: Salesforce field -> (CSV header or None, default value)
    spec: dict[str, tuple[str | None, str | None]] | None = None
    # A query job's SOQL (Bulk 2.0 query jobs)
    query: str | None = None

    # Bulk 1.0 query jobs: the Sforce-Enable-PKChunking options as JSON (jobs/pkchunk.py)
    pk_chunking: str | None = None

    @property
    def delimiter(self) -> str:
        return COLUMN_DELIMITERS[self.column_delimiter]

    @property
    def newline(self) -> str:
        return LINE_ENDINGS[self.line_ending]


class BatchState(StrEnum):
    QUEUED = "Queued"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    NOT_PROCESSED = "NotProcessed"


@dataclass
class Batch:
    """A Bulk 1.0 batch: one client upload, processed as one unit."""

    id: str
    job_id: str
    seq: int
    created_date: dt.datetime
    system_modstamp: dt.datetime
    content_type: str  # the job's contentType when the batch was added
    record_count: int
    state: BatchState = BatchState.QUEUED
    state_message: str | None = None
    records_processed: int = 0
    records_failed: int = 0
    total_processing_time: int = 0
    api_active_processing_time: int = 0
    apex_processing_time: int = 0
    retries: int = 0
    # A PK-chunking chunk batch: the id of the original batch it was cut from
    chunk_of: str | None = None


@dataclass
class BatchStats:
    """Per-state batch counts and record sums of a Bulk 1.0 job, computed from its batches."""

    queued: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    not_processed: int = 0
    records_processed: int = 0
    records_failed: int = 0
    retries: int = 0
    total_processing_time: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.in_progress + self.completed + self.failed + self.not_processed


@dataclass
class QueryCursor:
    """A REST query's server-side state: what `nextRecordsUrl` locators resume. Kept in the
    database so any API process of a deployment can serve the next page."""

    id: str
    query: str
    all_rows: bool
    total: int
    batch_size: int
    created_date: dt.datetime


@dataclass(frozen=True)
class JobFilter:
    job_type: str | None = None
    created_by: str | None = None  # only this user's jobs
    # the jobTypes a list answers (`/jobs/ingest` lists ingest jobs, `/jobs/query` query jobs)
    job_types: tuple[str, ...] = ()
    concurrency_mode: str | None = None
    pk_chunking: bool | None = None
    # the console's filters (the API's job list has none of these)
    state: str | None = None
    object: str | None = None
    operation: str | None = None
