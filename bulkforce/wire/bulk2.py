"""Bulk API 2.0 JSON shapes: job info in the documented field order, and error bodies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from bulkforce.errors import Kind
from bulkforce.model import Job, JobState

# (status, errorCode) per domain error kind; spec §3.12.
ERRORS: dict[Kind, tuple[int, str]] = {
    Kind.NOT_FOUND: (404, "NOT_FOUND"),
    # Salesforce documents only the status for a retired version; SOAP's code names the cause
    Kind.GONE: (410, "UNSUPPORTED_API_VERSION"),
    Kind.INSUFFICIENT_ACCESS: (403, "INSUFFICIENT_ACCESS"),
    Kind.INVALID_JOB: (400, "INVALIDJOB"),
    Kind.INVALID_JOB_STATE: (400, "INVALIDJOBSTATE"),
    Kind.INVALID_ENTITY: (400, "INVALIDENTITY"),
    Kind.INVALID_BATCH: (400, "INVALIDBATCH"),
    Kind.FEATURE_NOT_ENABLED: (400, "FEATURENOTENABLED"),
    Kind.API_ERROR: (400, "API_ERROR"),
    Kind.CLIENT_INPUT: (400, "CLIENTINPUTERROR"),
    Kind.JSON_PARSE: (400, "JSON_PARSER_ERROR"),
    Kind.UNSUPPORTED_MEDIA: (415, "UNSUPPORTED_MEDIA_TYPE"),
    Kind.METHOD_NOT_ALLOWED: (405, "METHOD_NOT_ALLOWED"),
    Kind.INVALID_SESSION: (401, "INVALID_SESSION_ID"),
    Kind.INVALID_XML: (400, "INVALIDXML"),
    Kind.INVALID_VERSION: (404, "NOT_FOUND"),
    Kind.UNSUPPORTED_CONTENT_TYPE: (415, "UNSUPPORTED_MEDIA_TYPE"),
    Kind.UNKNOWN: (500, "UNKNOWN_EXCEPTION"),
    Kind.UNAVAILABLE: (503, "SERVER_UNAVAILABLE"),
    Kind.QUERY: (400, "MALFORMED_QUERY"),
    Kind.INVALID_LOCATOR: (400, "INVALIDLOCATOR"),
    Kind.JOB_NOT_COMPLETE: (412, "JOB_NOT_COMPLETE"),
    Kind.VERSION_CONFLICT: (409, "INVALIDVERSION"),
}


def error_body(
    kind: Kind, message: str, code: str | None = None
) -> tuple[int, list[dict[str, str]]]:
    status, default = ERRORS[kind]
    code = code or default
    if kind is Kind.INVALID_SESSION:  # jsforce matches this body's text to refresh tokens
        return status, [{"message": message, "errorCode": code}]
    return status, [{"errorCode": code, "message": message}]


def timestamp(ts: dt.datetime) -> str:
    ts = ts.astimezone(dt.UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def job_info(job: Job) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": job.id,
        "operation": job.operation.value,
        "object": job.object,
        "createdById": job.created_by,
        "createdDate": timestamp(job.created_date),
        "systemModstamp": timestamp(job.system_modstamp),
        "state": job.state.value,
    }
    if job.external_id_field is not None:
        info["externalIdFieldName"] = job.external_id_field
    if job.assignment_rule_id is not None:
        info["assignmentRuleId"] = job.assignment_rule_id
    info["concurrencyMode"] = job.concurrency_mode
    info["contentType"] = job.content_type
    info["apiVersion"] = float(job.api_version)
    info["jobType"] = job.job_type
    if job.state is JobState.OPEN and job.job_type == "V2Ingest":
        info["contentUrl"] = f"services/data/v{job.api_version}/jobs/ingest/{job.id}/batches"
    info["lineEnding"] = job.line_ending
    info["columnDelimiter"] = job.column_delimiter
    info["numberRecordsProcessed"] = job.records_processed
    info["numberRecordsFailed"] = job.records_failed
    info["retries"] = job.retries
    info["totalProcessingTime"] = job.total_processing_time
    info["apiActiveProcessingTime"] = job.api_active_processing_time
    info["apexProcessingTime"] = job.apex_processing_time
    if job.error_message and job.state in (JobState.FAILED, JobState.ABORTED):
        info["errorMessage"] = job.error_message
    return info


def job_list(
    jobs: list[Job], next_url: str | None, info: Callable[[Job], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A page of a job list; `info` renders each job (default: the ingest job info)."""
    info = info or job_info
    return {
        "done": next_url is None,
        "records": [info(j) for j in jobs],
        "nextRecordsUrl": next_url,
    }
