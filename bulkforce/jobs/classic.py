"""Bulk API 1.0 ("Classic") jobs and batches: creation rules, the job state table of spec
§2.3.4, batch intake and results. Batches run through the same engine and worker as 2.0 jobs."""

from __future__ import annotations

import csv
import io
from typing import Any

from bulkforce.engine import ids
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs import pkchunk
from bulkforce.jobs.access import Caller, visible_job
from bulkforce.jobs.failures import FailureGroup, Grouper
from bulkforce.jobs.service import Context, check_hard_delete
from bulkforce.model import (
    LINE_ENDINGS,
    Batch,
    BatchState,
    BatchStats,
    Job,
    JobState,
    Operation,
    utcnow,
)
from bulkforce.wire import bulk1
from bulkforce.wire.csvio import CsvFormatError, RowReader

MAX_BATCH_BYTES = 10_000_000
MAX_BATCH_RECORDS = 10_000
MAX_SPEC_CHARS = 8_192
# JSON jobs and request bodies exist from API 36.0 (spec §1.1): older versions know only XML/CSV.
JSON_SINCE = 36.0
OPERATIONS = {"insert", "upsert", "update", "delete", "hardDelete", "query", "queryAll"}
CONTENT_TYPES = {"CSV", "XML", "JSON"}
MEDIA_TYPES = {
    "text/csv": "CSV", "application/xml": "XML", "text/xml": "XML", "application/json": "JSON",
    "zip/csv": "ZIP_CSV", "zip/xml": "ZIP_XML", "zip/json": "ZIP_JSON",
}  # fmt: skip
DATA_MEDIA = {"CSV": "text/csv", "XML": "application/xml", "JSON": "application/json"}
CREATE_FIELDS = {"operation", "object", "externalIdFieldName", "concurrencyMode", "contentType",
                 "assignmentRuleId", "state"}  # fmt: skip


def _cannot(field: str) -> ServiceError:
    return ServiceError(Kind.INVALID_JOB, f"{field[:1].upper()}{field[1:]} cannot be specified")


def _unparsable() -> ServiceError:
    return ServiceError(Kind.INVALID_JOB, "Unable to parse Job")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unparsable()
    return str(value)


def _concurrency(value: Any) -> str:
    if isinstance(value, bool):  # True == 1 in Python, but it is no concurrency mode
        raise _unparsable()
    if value in (None, "", "Parallel", 0, "0"):
        return "Parallel"
    if value in ("Serial", 1, "1"):
        return "Serial"
    raise _unparsable()


def count_csv_records(payload: bytes) -> int:
    """Records in a CSV batch; an unparsable one counts 0 here and fails when processed."""
    try:
        reader = RowReader(io.BytesIO(payload), ",")
        count = -1  # the header
        while rows := reader.next_rows(10_000):
            count += len(rows)
        return max(count, 0)
    except CsvFormatError:
        return 0


def parse_spec(payload: bytes) -> dict[str, tuple[str | None, str | None]]:
    """A transformation spec: `Salesforce Field,Csv Header,Value,Hint` (spec §2.11)."""
    text = payload.decode("utf-8-sig", errors="strict")
    if len(text) > MAX_SPEC_CHARS:
        raise ServiceError(Kind.INVALID_JOB, f"The spec exceeds {MAX_SPEC_CHARS} characters")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["salesforce field", "csv header"]:
        raise ServiceError(
            Kind.INVALID_JOB, "A spec needs the header Salesforce Field,Csv Header,Value,Hint"
        )
    spec: dict[str, tuple[str | None, str | None]] = {}
    for row in rows[1:]:
        row = row + [""] * (3 - len(row))
        if not row[0]:
            raise ServiceError(Kind.INVALID_JOB, "Every spec row needs a Salesforce Field")
        spec[row[0]] = (row[1] or None, row[2] or None)
    return spec


def apply_spec(
    spec: dict[str, tuple[str | None, str | None]], header: list[str], rows: list[list[str]]
) -> tuple[list[str], list[list[str]]]:
    """Rename mapped CSV columns to their fields; fill defaults for blank or absent columns."""
    rename = {csv_header.lower(): field for field, (csv_header, _) in spec.items() if csv_header}
    header = [rename.get(h.lower(), h) for h in header]
    position = {h.lower(): j for j, h in enumerate(header)}
    added: list[str] = []
    for field, (_, value) in spec.items():
        if value is None:
            continue
        j = position.get(field.lower())
        if j is None:
            added.append(value)
            header.append(field)
        else:
            for row in rows:
                if j < len(row) and row[j] == "":
                    row[j] = value
    if added:
        rows = [row + added for row in rows]
    return header, rows


class ClassicService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    # ---- jobs --------------------------------------------------------------------------------

    def get_job(self, raw_id: str, caller: Caller) -> Job:
        """The Bulk 1.0 job `caller` may see; another's answers as a job that does not exist."""
        job_id = ids.normalize(raw_id)
        job = self.store.get_job(job_id) if job_id and job_id.startswith("750") else None
        job = visible_job(caller, job)
        if job is None or job.job_type != "Classic":
            raise ServiceError(Kind.INVALID_JOB, f"Unable to find object: {raw_id}")
        return job

    def view(self, job: Job) -> tuple[Job, BatchStats]:
        return job, self.store.batch_stats(job.id)

    def create(
        self, version: str, fields: dict[str, Any], created_by: str | None = None,
        pk_chunking: str | None = None, line_ending: str | None = None,
    ) -> Job:  # fmt: skip
        """`created_by`: the calling user's id (the org's admin user when None);
        `pk_chunking`, `line_ending`: the Sforce-Enable-PKChunking and Sforce-Line-Ending
        headers, which shape query jobs (spec §2.9)."""
        for key in fields:
            if key not in CREATE_FIELDS:
                raise _cannot(key)
        operation = _text(fields.get("operation"))
        if not operation:
            raise ServiceError(Kind.INVALID_JOB, "Operation is required")
        if operation not in OPERATIONS:
            raise _unparsable()
        obj_name = _text(fields.get("object"))
        if not obj_name:
            raise ServiceError(Kind.INVALID_JOB, "Object is required")
        state = _text(fields.get("state"))
        if state not in (None, "", "Open"):
            raise _unparsable()
        obj = self.ctx.schema.get(obj_name)
        if obj is None:
            raise ServiceError(
                Kind.INVALID_ENTITY, f"Entity '{obj_name}' is not supported by the Bulk API."
            )
        if operation == "hardDelete":
            check_hard_delete(self.ctx, Operation.HARD_DELETE)
        ext = _text(fields.get("externalIdFieldName"))
        if operation == "upsert":
            if not ext:
                raise ServiceError(
                    Kind.INVALID_JOB,
                    f"External ID was blank for {obj.name}. An External ID must be specified for upsert.",
                )
            f = obj.field(ext)
            if f is None or not (f.external_id or f.id_lookup):
                raise ServiceError(
                    Kind.INVALID_JOB,
                    f"Field name provided, {ext} is not an External ID or indexed field for {obj.name}",
                )
            ext = f.name
        else:
            ext = None
        chunking, ending = None, "LF"
        if operation in ("query", "queryAll"):
            # headers clients send on every job (tap-salesforce) only shape query jobs
            options = pkchunk.parse_header(pk_chunking)
            chunking = options.dumps() if options else None
            ending = (line_ending or "LF").strip().upper()
            if ending not in LINE_ENDINGS:
                raise ServiceError(
                    Kind.INVALID_JOB, f"Invalid Sforce-Line-Ending: {line_ending} (LF or CRLF)"
                )
        content_type = _text(fields.get("contentType")) or "XML"
        if content_type.startswith("ZIP_"):
            raise ServiceError(
                Kind.FEATURE_NOT_ENABLED,
                f"Content type {content_type} (binary attachments) is not supported by this server",
            )
        if content_type not in CONTENT_TYPES:
            raise _unparsable()
        if content_type == "JSON" and float(version) < JSON_SINCE:
            raise _unparsable()  # an enum value the version's schema does not have
        concurrency = _concurrency(fields.get("concurrencyMode"))
        now = utcnow()
        job = Job(
            id=ids.make_id("750", self.store.allocate("job")),
            object=obj.name,
            operation=Operation(operation),
            created_by=created_by or self.ctx.settings.user_id,
            created_date=now,
            system_modstamp=now,
            api_version=version,
            job_type="Classic",
            external_id_field=ext,
            assignment_rule_id=_text(fields.get("assignmentRuleId")) or None,
            content_type=content_type,
            concurrency_mode=concurrency,
            line_ending=ending,
            pk_chunking=chunking,
        )
        self.store.insert_job(job)
        return job

    def update(self, job: Job, fields: dict[str, Any]) -> Job:
        for key in fields:
            if key not in ("state", "id"):
                raise _cannot(key)
        if "id" in fields and ids.normalize(_text(fields["id"]) or "") != job.id:
            raise ServiceError(
                Kind.INVALID_JOB, "The id in the request body does not match the job in the URL"
            )
        state = _text(fields.get("state"))
        if state == "Open":
            raise ServiceError(Kind.INVALID_JOB_STATE, "A job cannot be reopened")
        if state not in ("Closed", "Aborted"):
            raise _unparsable()
        if job.state in (JobState.ABORTED, JobState.FAILED):
            raise ServiceError(Kind.INVALID_JOB_STATE, f"Job is already {job.state.value.lower()}")
        if state == "Closed":
            if job.state is JobState.CLOSED:
                return job  # closing twice is a no-op (salesforce-bulk's teardown does it)
            moved = self.store.transition(job.id, [JobState.OPEN], JobState.CLOSED)
        else:
            moved = self.store.abort_job(job.id, [JobState.OPEN, JobState.CLOSED])
        if moved is None:  # changed under us; report from the state it has now
            current = self.store.get_job(job.id)
            if current is None:  # deleted meanwhile (retention)
                raise ServiceError(Kind.INVALID_JOB, f"Unable to find object: {job.id}")
            return self.update(current, fields)
        return moved

    def set_spec(self, job: Job, payload: bytes) -> None:
        if job.content_type != "CSV":
            raise ServiceError(
                Kind.INVALID_JOB, "Transformation specs are supported for CSV jobs only"
            )
        try:
            spec = parse_spec(payload)
        except UnicodeDecodeError:
            raise ServiceError(Kind.CLIENT_INPUT, "The spec is not valid UTF-8") from None
        if not self.store.set_spec(job.id, spec):
            raise ServiceError(
                Kind.INVALID_JOB_STATE,
                "A spec can only be added to an Open job before its first batch",
            )

    # ---- batches -----------------------------------------------------------------------------

    def add_batch(self, job: Job, media_type: str, payload: bytes) -> Batch:
        if job.state is not JobState.OPEN:
            message = "Job has been aborted" if job.state is JobState.ABORTED else "Job is not open"
            raise ServiceError(Kind.INVALID_JOB_STATE, message)
        if job.operation.is_query:
            # raw SOQL whatever the Content-Type (simple-salesforce sends application/json,
            # salesforce-bulk text/csv); it is checked when the batch runs (spec §2.4.3)
            return self._insert_batch(job, payload, 0)
        kind = MEDIA_TYPES.get(media_type)
        if kind is None:
            raise ServiceError(
                Kind.UNSUPPORTED_CONTENT_TYPE, f"Unsupported content type: {media_type or '(none)'}"
            )
        if kind != job.content_type:
            raise ServiceError(
                Kind.INVALID_BATCH,
                f"Content-Type of the request ({media_type}) does not match the content type of the job ({job.content_type})",
            )
        if len(payload) > MAX_BATCH_BYTES:
            raise ServiceError(
                Kind.INVALID_BATCH,
                f"Exceeded max size limit of {MAX_BATCH_BYTES} bytes for a batch",
            )
        count = self._count(job.content_type, payload)
        if count > MAX_BATCH_RECORDS:
            raise ServiceError(
                Kind.INVALID_BATCH,
                f"Exceeded max number of records: {count} (at most {MAX_BATCH_RECORDS} per batch)",
            )
        return self._insert_batch(job, payload, count)

    def _insert_batch(self, job: Job, payload: bytes, count: int) -> Batch:
        batch_id = ids.make_id("751", self.store.allocate("batch"))
        self.ctx.blobs.put(f"{batch_id}.request", payload)
        batch = self.store.insert_batch(batch_id, job.id, job.content_type, count)
        if batch is None:
            self.ctx.blobs.delete(batch_id)  # the job closed meanwhile: no orphan payload
            raise ServiceError(Kind.INVALID_JOB_STATE, "Job is not open")
        self.ctx.wake.set()
        return batch

    @staticmethod
    def _count(content_type: str, payload: bytes) -> int:
        """Records in a batch; an unreadable one counts 0: Salesforce accepts it (201) and
        the batch fails with a stateMessage when processed, whatever its content type."""
        if content_type == "CSV":
            return count_csv_records(payload)
        parse = bulk1.parse_json_records if content_type == "JSON" else bulk1.parse_xml_records
        try:
            return len(parse(payload)[1])
        except bulk1.PayloadError:
            return 0

    def get_batch(self, job: Job, raw_id: str) -> Batch:
        batch_id = ids.normalize(raw_id)
        batch = self.store.get_batch(batch_id) if batch_id else None
        if batch is None or batch.job_id != job.id:
            raise ServiceError(Kind.INVALID_BATCH, f"Unable to find object: {raw_id}")
        return batch

    def failures(self, job: Job, keep: int = 5) -> tuple[list[str], list[FailureGroup]]:
        """Failed rows of every completed batch grouped by error code, each shown as the
        batch, the error and the request row it came from (one batch in memory at a time)."""
        grouper = Grouper(keep)
        header: list[str] = []
        for batch in self.store.list_batches(job.id):
            doc = self.ctx.blobs.get(f"{batch.id}.result") if batch.records_failed else None
            if doc is None:
                continue
            errors = bulk1.result_errors(doc, job.content_type)
            try:
                names, rows = self._request_rows(job.content_type, self.request(batch))
            except (bulk1.PayloadError, CsvFormatError):
                names, rows = [], []
            header = header or ["batch", "error", *names]
            for n, error in enumerate(errors):
                if error is not None:
                    grouper.add(error, [batch.id, error, *(rows[n] if n < len(rows) else [])])
        return header, grouper.result()

    @staticmethod
    def _request_rows(content_type: str, payload: bytes) -> tuple[list[str], list[list[str]]]:
        if content_type == "CSV":
            reader = RowReader(io.BytesIO(payload), ",")
            return reader.header() or [], list(reader)
        parse = bulk1.parse_json_records if content_type == "JSON" else bulk1.parse_xml_records
        return parse(payload)

    def list_batches(self, job: Job) -> list[Batch]:
        return self.store.list_batches(job.id)

    def request(self, batch: Batch) -> bytes:
        return self.ctx.blobs.get(f"{batch.id}.request") or b""

    def result(self, batch: Batch) -> bytes:
        if batch.state in (BatchState.QUEUED, BatchState.IN_PROGRESS):
            raise ServiceError(Kind.INVALID_BATCH, "Batch not completed")
        doc = self.ctx.blobs.get(f"{batch.id}.result")
        if doc is None:  # Failed or NotProcessed: nothing was attempted
            raise ServiceError(Kind.INVALID_BATCH, "Records not processed")
        return doc
