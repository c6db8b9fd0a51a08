"""Bulk API 2.0 ingest routes (spec §3): parse the request, call the service, render."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bulkforce.errors import Kind, ServiceError
from bulkforce.http import body
from bulkforce.http.auth import caller_id, caller_of
from bulkforce.http.routing import Router
from bulkforce.http.versions import rest_version
from bulkforce.jobs.service import MULTIPART_MAX_CHARS, IngestService
from bulkforce.model import JobFilter, JobState
from bulkforce.wire import bulk2, multipart

BASE = "/services/data/v{ver}/jobs/ingest"
JSON_TYPE = "application/json;charset=UTF-8"
# Uploads are written ~1 MB at a time; one smaller than that is read whole first.
SMALL_UPLOAD = 1 << 20


def json_response(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data), status_code=status, media_type=None, headers={"Content-Type": JSON_TYPE}
    )


def error_response(err: ServiceError) -> Response:
    status, payload = bulk2.error_body(err.kind, err.message, err.code)
    return json_response(payload, status)


def version_of(params: dict[str, str]) -> str:
    """The path's API version; Bulk 2.0 ingest exists from 41.0 (spec §1.1)."""
    return rest_version(params["ver"], minimum=41)


def job_filter(request: Request, job_types: tuple[str, ...]) -> JobFilter:
    """A job list's filters (`jobType` one of `job_types`, the kinds the resource lists)."""
    q = request.query_params
    pk = q.get("isPkChunkingEnabled")
    job_type = q.get("jobType")
    if job_type is not None and job_type not in job_types:
        raise ServiceError(Kind.INVALID_JOB, f"Invalid jobType: {job_type}")
    return JobFilter(
        job_type=job_type,
        job_types=job_types,
        concurrency_mode=q.get("concurrencyMode"),
        pk_chunking=None if pk is None else pk.lower() == "true",
    )


def next_list_url(request: Request, path: str, locator: str | None) -> str | None:
    """The next page of a job list: the same filters and `queryLocator`."""
    if locator is None:
        return None
    q = request.query_params
    rest = "".join(f"&{k}={v}" for k, v in q.items() if k != "queryLocator")
    return f"{path}?queryLocator={locator}{rest}"


async def json_spec(request: Request) -> Any:
    """A JSON request body; another media type is 415 as Salesforce answers it."""
    mt = body.media_type(request)
    if mt not in ("application/json", ""):
        raise ServiceError(
            Kind.UNSUPPORTED_MEDIA, f"MediaType of '{mt}' is not supported by this resource"
        )
    return await body.read_json(request)


class Bulk2Routes:
    def __init__(self, service: IngestService) -> None:
        self.service = service

    def error(self, request: Request, err: ServiceError) -> Response:
        return error_response(err)

    def register(self, router: Router) -> None:
        router.add(BASE, self, get=self.list_jobs, post=self.create)
        router.add(BASE + "/{job}", self, get=self.get, patch=self.patch, delete=self.delete)
        router.add(BASE + "/{job}/batches", self, put=self.upload)
        router.add(BASE + "/{job}/successfulResults", self, get=self.successful)
        router.add(BASE + "/{job}/failedResults", self, get=self.failed)
        router.add(BASE + "/{job}/unprocessedrecords", self, get=self.unprocessed)

    async def create(self, request: Request, params: dict[str, str]) -> Response:
        version = version_of(params)
        mt = body.media_type(request)
        if mt == "multipart/form-data":
            return await self._create_multipart(request, version)
        if mt not in ("application/json", ""):
            raise ServiceError(
                Kind.UNSUPPORTED_MEDIA, f"MediaType of '{mt}' is not supported by this resource"
            )
        spec = await body.read_json(request)
        job = await run_in_threadpool(self.service.open_job, version, spec, caller_id(request))
        return json_response(bulk2.job_info(job))

    async def _create_multipart(self, request: Request, version: str) -> Response:
        # The part limit is in characters; 4 bytes per character bounds it in bytes.
        raw = await body.read_all(request, limit=4 * MULTIPART_MAX_CHARS + 64 * 1024)
        try:
            parts = multipart.parse(raw, multipart.boundary_of(request.headers["content-type"]))
        except multipart.MultipartError as e:
            raise ServiceError(Kind.CLIENT_INPUT, f"Malformed multipart request: {e}") from None
        if "job" not in parts or "content" not in parts:
            raise ServiceError(
                Kind.INVALID_JOB,
                "InvalidJob : A multipart request needs the parts 'job' and 'content'",
            )
        spec = body.parse_json(parts["job"])
        job = await run_in_threadpool(
            self.service.create_with_data, version, spec, parts["content"], caller_id(request)
        )
        return json_response(bulk2.job_info(job))

    async def list_jobs(self, request: Request, params: dict[str, str]) -> Response:
        version = version_of(params)
        flt = job_filter(request, ("V2Ingest", "Classic", "BigObjectIngest"))
        jobs, locator = await run_in_threadpool(
            self.service.list_jobs, flt, request.query_params.get("queryLocator"),
            caller_of(request),
        )  # fmt: skip
        next_url = next_list_url(request, f"/services/data/v{version}/jobs/ingest", locator)
        return json_response(bulk2.job_list(jobs, next_url))

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        version_of(params)
        job = await run_in_threadpool(self.service.get, params["job"], caller_of(request))
        return json_response(bulk2.job_info(job))

    async def patch(self, request: Request, params: dict[str, str]) -> Response:
        version_of(params)
        spec = await json_spec(request)
        state = spec.get("state") if isinstance(spec, dict) else None
        if state == JobState.UPLOAD_COMPLETE:
            job = await run_in_threadpool(self.service.close, params["job"], caller_of(request))
        elif state == JobState.ABORTED:
            job = await run_in_threadpool(self.service.abort, params["job"], caller_of(request))
        else:
            # 404 before 400
            await run_in_threadpool(self.service.get, params["job"], caller_of(request))
            raise ServiceError(
                Kind.INVALID_JOB,
                f"InvalidJob : Invalid state: {state!r}. Use UploadComplete or Aborted",
            )
        return json_response(bulk2.job_info(job))

    async def delete(self, request: Request, params: dict[str, str]) -> Response:
        version_of(params)
        await run_in_threadpool(self.service.delete, params["job"], caller_of(request))
        return Response(status_code=204)

    async def upload(self, request: Request, params: dict[str, str]) -> Response:
        version_of(params)
        job_id, caller = params["job"], caller_of(request)
        if body.media_type(request) == "text/csv" and body.plain_size(request) < SMALL_UPLOAD:
            # Most uploads: read whole first, then checked, written and recorded on one thread
            # hop instead of three (open, write, finish). Nothing in an uncompressed body of
            # known size can fail before the job's own checks would have.
            data = await body.read_all(request, limit=SMALL_UPLOAD)
            await run_in_threadpool(self.service.upload, job_id, caller, data)
            return Response(status_code=201)
        sink = await run_in_threadpool(self.service.open_upload, job_id, caller)
        mt = body.media_type(request)
        if mt != "text/csv":
            sink.discard()
            raise ServiceError(
                Kind.UNSUPPORTED_MEDIA, f"MediaType of '{mt}' is not supported by this resource"
            )
        # Writes go to a thread in ~1 MB steps: with PostgreSQL each is a database insert,
        # which must not stall the event loop (and every other request) mid-upload.
        buf = bytearray()
        try:
            async for chunk in body.stream(request):
                buf += chunk
                if len(buf) >= SMALL_UPLOAD:
                    await run_in_threadpool(sink.write, bytes(buf))
                    buf.clear()
        except BaseException:
            await run_in_threadpool(sink.discard)
            raise
        await run_in_threadpool(sink.finish, bytes(buf))  # the rest written on this hop
        return Response(status_code=201)

    async def _results(self, request: Request, params: dict[str, str], kind: str) -> Response:
        version_of(params)
        _, chunks = await run_in_threadpool(
            self.service.results, params["job"], kind, caller_of(request)
        )
        return StreamingResponse(
            chunks, media_type=None, headers={"Content-Type": "text/csv; charset=UTF-8"}
        )

    async def successful(self, request: Request, params: dict[str, str]) -> Response:
        return await self._results(request, params, "success")

    async def failed(self, request: Request, params: dict[str, str]) -> Response:
        return await self._results(request, params, "failed")

    async def unprocessed(self, request: Request, params: dict[str, str]) -> Response:
        return await self._results(request, params, "unprocessed")
