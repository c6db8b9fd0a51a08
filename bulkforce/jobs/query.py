"""Bulk API 2.0 query jobs (bulk-api.md §4, query.md §5.2): SOQL validated at create, the job
run by a worker into one result file (jobs/results.py), pages served by stable locators.

States as for ingest: UploadComplete → InProgress → JobComplete / Failed, or Aborted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bulkforce.engine import ids
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.access import Caller
from bulkforce.jobs.results import compile_for, page_bytes, result_index, write_csv_result
from bulkforce.jobs.service import Context, page_of_jobs, visible_job_of_type
from bulkforce.model import (
    COLUMN_DELIMITERS,
    LINE_ENDINGS,
    Job,
    JobFilter,
    JobState,
    Operation,
    utcnow,
)
from bulkforce.soql import Api
from bulkforce.wire.query import decode_locator, encode_locator, quoted_header

log = logging.getLogger("bulkforce.query")

JOB_TYPE = "V2Query"
# Without maxRecords a page holds this many rows (query.md §5.2 [REC]); pages are streamed.
DEFAULT_PAGE_ROWS = 100_000
MAX_PAGE_ROWS = 1_000_000
# resultPages answers this many result URLs at a time (the documented "up to five").
RESULT_PAGE_URLS = 5
_RUNNING = (JobState.UPLOAD_COMPLETE, JobState.IN_PROGRESS)


@dataclass
class Page:
    rows: int
    locator: str  # the next page's locator, or "null" on the last
    header: bytes
    body: Iterator[bytes]


class QueryJobService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def get(self, raw_id: str, caller: Caller) -> Job:
        return visible_job_of_type(self.store, raw_id, caller, JOB_TYPE)

    def create(self, version: str, spec: Any, created_by: str | None = None) -> Job:
        if not isinstance(spec, dict):
            raise ServiceError(Kind.JSON_PARSE, "The job definition must be a JSON object")
        operation = spec.get("operation")
        if operation not in (Operation.QUERY.value, Operation.QUERY_ALL.value):
            if not operation:
                raise ServiceError(Kind.INVALID_JOB, "InvalidJob : Operation is required")
            raise ServiceError(Kind.INVALID_JOB, f"InvalidJob : Invalid operation: {operation}")
        text = spec.get("query")
        if not isinstance(text, str) or not text.strip():
            raise ServiceError(Kind.INVALID_JOB, "InvalidJob : Query is required")
        content_type = spec.get("contentType") or "CSV"
        delimiter = spec.get("columnDelimiter") or "COMMA"
        line_ending = spec.get("lineEnding") or "LF"
        if content_type != "CSV":
            raise ServiceError(
                Kind.INVALID_JOB,
                f"InvalidJob : Invalid contentType: {content_type}. Only CSV is supported",
            )
        if delimiter not in COLUMN_DELIMITERS:
            raise ServiceError(
                Kind.INVALID_JOB, f"InvalidJob : Invalid columnDelimiter: {delimiter}"
            )
        if line_ending not in LINE_ENDINGS:
            raise ServiceError(Kind.INVALID_JOB, f"InvalidJob : Invalid lineEnding: {line_ending}")
        op = Operation(operation)
        now = utcnow()
        # validated now, so a bad query is a 400 on create, not a Failed job (query.md §0.5)
        plan = compile_for(self.ctx, text, Api.BULK2, all_rows=op is Operation.QUERY_ALL, now=now)
        job = Job(
            id=ids.make_id("750", self.store.allocate("job")),
            object=plan.root.name,
            operation=op,
            created_by=created_by or self.ctx.settings.user_id,
            created_date=now,
            system_modstamp=now,
            api_version=version,
            state=JobState.UPLOAD_COMPLETE,
            job_type=JOB_TYPE,
            line_ending=line_ending,
            column_delimiter=delimiter,
            query=text,
        )
        self.store.insert_job(job)
        self.ctx.wake.set()
        return job

    def list_jobs(
        self, flt: JobFilter, locator: str | None, caller: Caller
    ) -> tuple[list[Job], str | None]:
        return page_of_jobs(self.ctx, flt, locator, caller)

    def abort(self, raw_id: str, caller: Caller) -> Job:
        job = self.get(raw_id, caller)
        moved = self.store.transition(job.id, _RUNNING, JobState.ABORTED)
        if moved is None:
            raise ServiceError(Kind.INVALID_JOB_STATE, "Aborting already Completed Job not allowed")
        return moved

    def delete(self, raw_id: str, caller: Caller) -> None:
        job = self.get(raw_id, caller)
        if job.state in _RUNNING:
            raise ServiceError(
                Kind.API_ERROR,
                "Error encountered when deleting the job because the job is not terminated",
            )
        self.store.delete_job(job.id)
        self.ctx.blobs.delete(job.id)

    # ---- results -----------------------------------------------------------------------------

    def _complete(self, raw_id: str, version: str, caller: Caller) -> Job:
        job = self.get(raw_id, caller)
        if job.api_version != version:
            raise ServiceError(
                Kind.VERSION_CONFLICT,
                f"The query job was created with API version {job.api_version}; "
                f"get its results with the same version",
            )
        if job.state is not JobState.JOB_COMPLETE:
            raise ServiceError(
                Kind.JOB_NOT_COMPLETE,
                "can only download query results of successfully completed bulk job with "
                f"status: JOB_COMPLETE. Current status: {_status(job.state)}",
            )
        return job

    def results(
        self, raw_id: str, version: str, locator: str | None, max_records: str | None,
        caller: Caller,
    ) -> Page:  # fmt: skip
        job = self._complete(raw_id, version, caller)
        index = result_index(self.ctx, job.id)
        if index is None:  # completed by a worker that lost its result: should not happen
            raise ServiceError(Kind.UNKNOWN, "The job's results are missing")
        start = 0
        if locator:
            decoded = decode_locator(locator)
            if decoded is None or decoded > index.rows:
                raise ServiceError(Kind.INVALID_LOCATOR, f"Invalid locator: {locator}")
            start = decoded
        count = _page_size(max_records)
        rows, body = page_bytes(self.ctx, job.id, index, start, count, job.newline)
        nxt = start + rows
        return Page(
            rows=rows,
            locator=encode_locator(nxt) if nxt < index.rows else "null",
            header=quoted_header(job.header or [], job.delimiter, job.newline),
            body=body,
        )

    def result_pages(
        self, raw_id: str, version: str, locator: str | None, max_records: str | None,
        caller: Caller,
    ) -> tuple[list[str], str | None]:  # fmt: skip
        """Up to five result URLs from `locator` on, and the URL of the next five."""
        job = self._complete(raw_id, version, caller)
        index = result_index(self.ctx, job.id)
        rows = index.rows if index else 0
        count = _page_size(max_records)
        start = 0
        if locator:
            decoded = decode_locator(locator)
            if decoded is None or decoded > rows:
                raise ServiceError(Kind.INVALID_LOCATOR, f"Invalid locator: {locator}")
            start = decoded
        base = f"/services/data/v{version}/jobs/query/{job.id}"
        urls: list[str] = []
        pos = start
        while len(urls) < RESULT_PAGE_URLS and (pos < rows or (pos == 0 and not urls)):
            loc = f"locator={encode_locator(pos)}&" if pos else ""
            urls.append(f"{base}/results?{loc}maxRecords={count}")
            pos += count
        nxt = f"{base}/resultPages?locator={encode_locator(pos)}" if pos < rows else None
        return urls, nxt


def _status(state: JobState) -> str:
    return {"UploadComplete": "UPLOAD_COMPLETE", "InProgress": "IN_PROGRESS"}.get(
        state.value, state.value.upper()
    )


def _page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_ROWS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n <= 0:
        raise ServiceError(
            Kind.INVALID_JOB, f"InvalidJob : maxRecords must be a positive integer: {raw}"
        )
    return min(n, MAX_PAGE_ROWS)


# ---- the worker's side -----------------------------------------------------------------------


class _Stopped(Exception):
    pass


def run_query_job(ctx: Context, job: Job, owner: str) -> None:
    """Run a claimed query job to JobComplete (or Failed); returns quietly if the job is
    aborted, deleted or taken over meanwhile."""
    started = time.perf_counter()
    if job.query is None:
        ctx.store.transition(
            job.id, [JobState.IN_PROGRESS], JobState.FAILED, error_message="No query"
        )
        return
    try:
        plan = compile_for(
            ctx, job.query, Api.BULK2, all_rows=job.operation is Operation.QUERY_ALL,
            now=job.created_date,
        )  # fmt: skip
    except ServiceError as e:  # the schema changed since the job was created
        ctx.store.transition(
            job.id, [JobState.IN_PROGRESS], JobState.FAILED,
            error_message=f"{e.code}: {e.message}",
        )  # fmt: skip
        return
    lease = ctx.settings.lease_seconds
    renewed = time.monotonic()

    def progress(rows: int) -> None:
        # Each renewal also tells us whether the job was aborted or deleted meanwhile.
        nonlocal renewed
        if time.monotonic() - renewed >= min(2.0, lease / 4):
            if not ctx.store.renew_lease(job.id, owner, lease):
                raise _Stopped()
            renewed = time.monotonic()

    try:
        rows = write_csv_result(ctx, job.id, plan, job.delimiter, job.newline, progress)
    except _Stopped:
        log.info("query job %s stopped: aborted, deleted or taken over", job.id)
        return
    ctx.store.transition(
        job.id, [JobState.IN_PROGRESS], JobState.JOB_COMPLETE,
        records_processed=rows, header=[c.name for c in plan.columns],
        total_processing_time=int((time.perf_counter() - started) * 1000),
    )  # fmt: skip
