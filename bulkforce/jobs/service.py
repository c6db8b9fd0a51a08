"""Bulk 2.0 ingest jobs: creation rules, the state machine (spec §3.10), uploads and results."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from bulkforce.engine import ids
from bulkforce.engine.schema import Schema
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.access import Caller, owner_filter, visible_job
from bulkforce.jobs.failures import FailureGroup, group_failures
from bulkforce.model import (
    COLUMN_DELIMITERS,
    LINE_ENDINGS,
    Job,
    JobFilter,
    JobState,
    Operation,
    utcnow,
)
from bulkforce.store import Store
from bulkforce.store.blobs import Blobs
from bulkforce.store.wakeup import Wakeup
from bulkforce.wire.csvio import (
    CsvFormatError,
    RowReader,
    UploadScanner,
    render_rows,
    result_header,
)

OPEN, UPLOAD_COMPLETE, IN_PROGRESS = JobState.OPEN, JobState.UPLOAD_COMPLETE, JobState.IN_PROGRESS
TERMINAL = (JobState.JOB_COMPLETE, JobState.FAILED, JobState.ABORTED)
MULTIPART_MAX_CHARS = 100_000


@dataclass
class Settings:
    org_id: str
    user_id: str
    max_upload_bytes: int = 150 * 1024 * 1024
    list_page_size: int = 1000
    # How long a running job's consecutive batches share one write transaction: progress
    # becomes durable (and visible) at least this often; 0 commits every batch. Each commit of
    # a large job rewrites the index pages it touched and checkpoints the WAL: on the 1M-row
    # bench, 3 s instead of 1 s made SQLite inserts ~5% faster (0.64 → 0.67-0.70 of raw, two
    # runs each, quiet machine). A writer that queues (API, another job) still gets in at the
    # next batch's end (writers_waiting), so only a job's own progress shows in 3 s steps.
    commit_seconds: float = 3.0
    # the "Bulk API Hard Delete" user permission
    hard_delete: bool = True
    # A worker renews its lease at every commit; one that dies is replaced once it expires.
    lease_seconds: float = 60.0
    # Salesforce retries an internal batch up to 10 times (1.0) / 20 times (2.0), then fails it.
    max_retries: int = 10
    # Salesforce deletes jobs 7 days after they end and aborts jobs left Open for 24 hours.
    retention_hours: float = 7 * 24
    open_job_hours: float = 24
    sweep_seconds: float = 60
    # The time zone whose days SOQL's relative date literals (TODAY, LAST_N_DAYS:n…) count.
    timezone: str = "UTC"
    # Bulk 1.0 query results larger than this get several result ids (Salesforce: 1 GB)
    query_result_mb: float = 1024


@dataclass
class Context:
    """Everything a request or a worker needs: built once at start-up."""

    store: Store
    blobs: Blobs
    schema: Schema
    settings: Settings
    wake: Wakeup


def check_hard_delete(ctx: Context, op: Operation) -> None:
    if op is Operation.HARD_DELETE and not ctx.settings.hard_delete:
        raise ServiceError(
            Kind.FEATURE_NOT_ENABLED,
            "hardDelete operation requires special user profile permission, please contact your "
            "system administrator",
        )


def job_id_from_path(raw: str) -> str:
    norm = ids.normalize(raw)
    if norm is None or not norm.startswith("750"):
        raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
    return norm


class UploadSink:
    """Receives an upload's bytes (already decompressed), enforcing the size limit."""

    def __init__(self, ctx: Context, job: Job) -> None:
        self.ctx, self.job = ctx, job
        self.scanner = UploadScanner()
        self.writer = ctx.blobs.upload_writer(job.id)

    def write(self, data: bytes) -> None:
        limit = self.ctx.settings.max_upload_bytes
        if self.scanner.size + len(data) > limit:
            self.discard()
            raise ServiceError(
                Kind.INVALID_JOB,
                f"Exceeded max size limit of {limit} bytes for the job data; split it into several jobs",
            )
        self.scanner.feed(data)
        self.writer.write(data)

    def discard(self) -> None:
        self.writer.discard()

    def finish(self, rest: bytes = b"") -> None:
        """Write `rest` (the upload's last bytes), then record the upload on the job."""
        if rest:
            try:
                self.write(rest)
            except BaseException:
                self.discard()
                raise
        problem = self.scanner.finish()
        try:
            self.writer.close()
            accepted = self.ctx.store.record_upload(
                self.job.id, self.scanner.size, problem, self.writer, self.scanner.data_rows
            )
        except BaseException:
            self.discard()
            raise
        if not accepted:
            self.discard()  # a late upload leaves nothing behind
            raise ServiceError(
                Kind.INVALID_JOB_STATE,
                "Job is not in Open state; data can only be uploaded to an Open job",
            )


def visible_job_of_type(store: Store, raw_id: str, caller: Caller, job_type: str) -> Job:
    """The job of `job_type` that `caller` may see, else 404 as for a job that does not exist
    (a Bulk 2.0 resource never answers for a job of another kind)."""
    job = visible_job(caller, store.get_job(job_id_from_path(raw_id)))
    if job is None or job.job_type != job_type:
        raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
    return job


def page_of_jobs(
    ctx: Context, flt: JobFilter, locator: str | None, caller: Caller
) -> tuple[list[Job], str | None]:
    """One page of the jobs `caller` may see matching `flt` (`queryLocator` paging: the last Id
    of the page before) and the next page's locator, None on the last page."""
    flt = dataclasses.replace(flt, created_by=owner_filter(caller))
    after = ""
    if locator:
        after = ids.normalize(locator) or ""
        if not after:
            raise ServiceError(Kind.INVALID_JOB, f"Invalid queryLocator: {locator}")
    size = ctx.settings.list_page_size
    jobs = ctx.store.list_jobs(flt, after, size + 1)
    if len(jobs) > size:
        return jobs[:size], jobs[size - 1].id
    return jobs, None


class IngestService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    # ---- jobs --------------------------------------------------------------------------------

    def get(self, raw_id: str, caller: Caller) -> Job:
        return visible_job_of_type(self.store, raw_id, caller, "V2Ingest")

    def create(
        self, version: str, spec: Any, state: JobState = OPEN, created_by: str | None = None
    ) -> Job:
        """`created_by`: the calling user's id (the org's admin user when None)."""
        if not isinstance(spec, dict):
            raise ServiceError(Kind.JSON_PARSE, "The job definition must be a JSON object")
        obj_name = spec.get("object")
        operation = spec.get("operation")
        if not isinstance(operation, str) or not operation:
            raise ServiceError(Kind.INVALID_JOB, "InvalidJob : Operation is required")
        try:
            op = Operation(operation)
            if op.is_query:  # query jobs are created at /jobs/query
                raise ValueError(operation)
        except ValueError:
            raise ServiceError(
                Kind.INVALID_JOB, f"InvalidJob : Invalid operation: {operation}"
            ) from None
        if not isinstance(obj_name, str) or not obj_name:
            raise ServiceError(Kind.INVALID_JOB, "InvalidJob : Object is required")
        check_hard_delete(self.ctx, op)
        obj = self.ctx.schema.get(obj_name)
        if obj is None:
            raise ServiceError(
                Kind.INVALID_ENTITY, f"Entity '{obj_name}' is not supported by the Bulk API."
            )
        content_type = spec.get("contentType") or "CSV"
        delimiter = spec.get("columnDelimiter") or "COMMA"
        line_ending = spec.get("lineEnding") or "LF"
        # non-strings (numbers, lists, objects) are as invalid as unknown names, and must not
        # reach a set lookup (a list is unhashable)
        if not isinstance(content_type, str) or content_type != "CSV":
            raise ServiceError(
                Kind.INVALID_JOB,
                f"InvalidJob : Invalid contentType: {content_type}. Only CSV is supported",
            )
        if not isinstance(delimiter, str) or delimiter not in COLUMN_DELIMITERS:
            raise ServiceError(
                Kind.INVALID_JOB, f"InvalidJob : Invalid columnDelimiter: {delimiter}"
            )
        if not isinstance(line_ending, str) or line_ending not in LINE_ENDINGS:
            raise ServiceError(Kind.INVALID_JOB, f"InvalidJob : Invalid lineEnding: {line_ending}")
        ext = spec.get("externalIdFieldName")
        if op is Operation.UPSERT:
            if not ext:
                raise ServiceError(
                    Kind.INVALID_JOB,
                    f"InvalidJob : External ID was blank for {obj.name}. An External ID must be specified for upsert.",
                )
            f = obj.field(str(ext))
            if f is None:
                raise ServiceError(Kind.INVALID_JOB, f"InvalidJob : Field name not found : {ext}")
            if not (f.external_id or f.id_lookup):
                raise ServiceError(
                    Kind.INVALID_JOB,
                    f"InvalidJob : The field {f.name} is not an External ID or Id field",
                )
            ext = f.name
        else:
            ext = None
        rule = spec.get("assignmentRuleId")
        now = utcnow()
        seq = self.store.allocate("job")
        job = Job(
            id=ids.make_id("750", seq),
            object=obj.name,
            operation=op,
            created_by=created_by or self.ctx.settings.user_id,
            created_date=now,
            system_modstamp=now,
            api_version=version,
            state=state,
            external_id_field=ext,
            assignment_rule_id=str(rule) if rule else None,
            line_ending=line_ending,
            column_delimiter=delimiter,
        )
        return job

    def open_job(self, version: str, spec: Any, created_by: str) -> Job:
        """`create` and `insert` on one request thread: one hop from the event loop, not two."""
        return self.insert(self.create(version, spec, created_by=created_by))

    def insert(self, job: Job) -> Job:
        self.store.insert_job(job)
        if job.state is UPLOAD_COMPLETE:
            self.ctx.wake.set()
        return job

    def open_upload(self, raw_id: str, caller: Caller) -> UploadSink:
        job = self.get(raw_id, caller)
        if job.state is not OPEN:
            raise ServiceError(
                Kind.INVALID_JOB_STATE, f"Job is not in Open state (state: {job.state})"
            )
        return UploadSink(self.ctx, job)

    def upload(self, raw_id: str, caller: Caller, data: bytes) -> None:
        """A whole upload at once: `open_upload`, then its sink's `finish`."""
        self.open_upload(raw_id, caller).finish(data)

    def create_with_data(
        self, version: str, spec: Any, content: bytes, created_by: str | None = None
    ) -> Job:
        """Multipart create: the job goes straight to UploadComplete (spec §3.3)."""
        if len(content.decode("utf-8", errors="replace")) > MULTIPART_MAX_CHARS:
            raise ServiceError(
                Kind.INVALID_JOB,
                f"InvalidJob : The content part exceeds {MULTIPART_MAX_CHARS} characters; "
                "create the job and upload with PUT .../batches instead",
            )
        job = self.create(version, spec, created_by=created_by)
        self.store.insert_job(job)
        sink = UploadSink(self.ctx, job)
        sink.write(content)
        sink.finish()
        moved = self.store.transition(job.id, [OPEN], UPLOAD_COMPLETE)
        assert moved is not None
        self.ctx.wake.set()
        return moved

    def close(self, raw_id: str, caller: Caller) -> Job:
        job = self.get(raw_id, caller)
        if job.state is not OPEN:
            raise ServiceError(
                Kind.INVALID_JOB_STATE, f"Job is not in Open state (state: {job.state})"
            )
        if job.upload_count > 1:
            raise ServiceError(
                Kind.INVALID_JOB,
                f"Found multipe contents for job: <{job.id[:15]}>, please 'Close' / 'Abort' / "
                "'Delete' the current Job then create a new Job and make sure you only do 'PUT' "
                "once on a given Job.",
            )
        moved = self.store.transition(job.id, [OPEN], UPLOAD_COMPLETE)
        if moved is None:
            return self._state_error(job.id, "close")
        self.ctx.wake.set()
        return moved

    def abort(self, raw_id: str, caller: Caller) -> Job:
        job = self.get(raw_id, caller)
        moved = self.store.transition(
            job.id, [OPEN, UPLOAD_COMPLETE, IN_PROGRESS], JobState.ABORTED
        )
        if moved is None:
            return self._state_error(job.id, "abort")
        return moved

    def _state_error(self, job_id: str, action: str) -> Job:
        job = self.store.get_job(job_id)
        if job is None:
            raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
        if action == "abort":
            raise ServiceError(Kind.INVALID_JOB_STATE, "Aborting already Completed Job not allowed")
        raise ServiceError(Kind.INVALID_JOB_STATE, f"Job is not in Open state (state: {job.state})")

    def delete(self, raw_id: str, caller: Caller) -> None:
        job = self.get(raw_id, caller)
        if job.state in (OPEN, IN_PROGRESS):
            raise ServiceError(
                Kind.API_ERROR,
                "Error encountered when deleting the job because the job is not terminated",
            )
        self.store.delete_job(job.id)
        self.ctx.blobs.delete(job.id)

    def find(self, raw_id: str, caller: Caller) -> Job:
        """A job of any API that `caller` may see, by its id (the console shows them all)."""
        job = visible_job(caller, self.store.get_job(job_id_from_path(raw_id)))
        if job is None:
            raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
        return job

    def history(self, job_id: str) -> list[tuple[str, str]]:
        return self.store.job_history(job_id)

    def recent(self, flt: JobFilter, caller: Caller, limit: int = 200) -> list[Job]:
        """The newest jobs of every API that `caller` may see, newest first."""
        flt = dataclasses.replace(flt, created_by=owner_filter(caller))
        return self._with_batch_counts(self.store.recent_jobs(flt, limit))

    def _with_batch_counts(self, jobs: list[Job]) -> list[Job]:
        for job in jobs:
            if job.job_type == "Classic":  # a 1.0 job's counts live in its batches
                stats = self.store.batch_stats(job.id)
                job.records_processed, job.records_failed = (
                    stats.records_processed,
                    stats.records_failed,
                )
                job.retries, job.total_processing_time = stats.retries, stats.total_processing_time
        return jobs

    def failures(
        self, raw_id: str, caller: Caller, keep: int = 5
    ) -> tuple[list[str], list[FailureGroup]]:
        """The job's failed rows grouped by error code, with the first `keep` of each."""
        job, chunks = self.results(raw_id, "failed", caller)
        return group_failures(chunks, job.delimiter, keep)

    def list_jobs(
        self, flt: JobFilter, locator: str | None, caller: Caller
    ) -> tuple[list[Job], str | None]:
        """One page of the jobs `caller` may see and the locator of the next page (None on the
        last page)."""
        jobs, next_locator = page_of_jobs(self.ctx, flt, locator, caller)
        return self._with_batch_counts(jobs), next_locator

    # ---- results -----------------------------------------------------------------------------

    def results(self, raw_id: str, kind: str, caller: Caller) -> tuple[Job, Iterator[bytes]]:
        job = self.get(raw_id, caller)
        if job.state is OPEN:
            raise ServiceError(
                Kind.INVALID_JOB_STATE, "Results are not available while the job is Open"
            )
        header = job.header or self._peek_header(job)
        if kind == "unprocessed":
            return job, self._unprocessed(job, header)
        return job, self._processed(job, header, kind)

    def _peek_header(self, job: Job) -> list[str]:
        if job.upload_problem:  # may be the header itself (over 32,000 characters)
            return []
        f = self.ctx.blobs.open(job.id)
        if f is None:
            return []
        with f:
            try:
                return RowReader(f, job.delimiter).header() or []
            except CsvFormatError:
                return []

    def _processed(self, job: Job, header: list[str], kind: str) -> Iterator[bytes]:
        yield result_header(kind, header, job.delimiter, job.newline) if header else b""
        yield from self.ctx.blobs.read_results(
            job.id, "ok" if kind == "success" else "err", job.batches_done
        )

    def _unprocessed(self, job: Job, header: list[str]) -> Iterator[bytes]:
        if header:
            yield result_header("unprocessed", header, job.delimiter, job.newline)
        if job.state not in (JobState.ABORTED, JobState.FAILED) or job.upload_problem:
            # A job that failed before parsing (bad UTF-8, unbalanced quote) has no rows
            # that can be told apart; it reports none rather than garbage.
            return
        f: BinaryIO | None = self.ctx.blobs.open(job.id)
        if f is None:
            return
        # committed with its batch (advance_job): the rows of the batches done, whatever
        # their sizes
        skip = job.records_processed
        with f:
            rows = RowReader(f, job.delimiter)
            try:
                rows.header()
                rows.skip(skip)  # the rows of batches already done
                while buf := rows.next_rows(1000):
                    yield render_rows(buf, job.delimiter, job.newline)
            except CsvFormatError:
                return
