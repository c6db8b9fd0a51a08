"""Bulk API 1.0 routes (spec §2): parse the request, call the service, render XML or JSON.

Formats follow spec §2.2: creation and updates answer in the request body's format; reads of
an existing job answer in the job's format; data (requests, results) in the job's data format.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bulkforce.errors import Kind, ServiceError
from bulkforce.http import body
from bulkforce.http.auth import caller_id, caller_of
from bulkforce.http.routing import Router
from bulkforce.http.versions import api_version
from bulkforce.jobs.bulk1query import QueryBatches
from bulkforce.jobs.classic import DATA_MEDIA, JSON_SINCE, MAX_BATCH_BYTES, ClassicService
from bulkforce.jobs.pkchunk import HEADER as PK_HEADER
from bulkforce.model import Job
from bulkforce.wire import bulk1, bulk1query

BASE = "/services/async/{ver}/job"


def respond(data: bytes, as_json: bool, status: int = 200) -> Response:
    # salesforce-bulk compares Content-Type for equality: bare types, no charset (spec §1.6)
    media = "application/json" if as_json else "application/xml"
    return Response(data, status_code=status, headers={"Content-Type": media})


def request_is_json(request: Request) -> bool:
    return body.media_type(request) == "application/json"


def job_is_json(job: Job) -> bool:
    return job.content_type in ("JSON", "ZIP_JSON")


class Bulk1Routes:
    def __init__(self, service: ClassicService) -> None:
        self.service = service
        self.queries = QueryBatches(service.ctx)

    def error(self, request: Request, err: ServiceError) -> Response:
        job: Job | None = getattr(request.state, "bulk1_job", None)
        if job is not None:
            as_json = job_is_json(job)
        else:  # a version without JSON answers in XML
            as_json = request_is_json(request) and not getattr(request.state, "xml_only", False)
        status, data = bulk1.error_body(err.kind, err.message, as_json)
        return respond(data, as_json, status)

    def register(self, router: Router) -> None:
        router.add(BASE, self, post=self.create)
        router.add(BASE + "/{job}", self, get=self.get, post=self.update)
        router.add(BASE + "/{job}/batch", self, get=self.list_batches, post=self.add_batch)
        router.add(BASE + "/{job}/batch/{batch}", self, get=self.get_batch)
        router.add(BASE + "/{job}/batch/{batch}/request", self, get=self.batch_request)
        router.add(BASE + "/{job}/batch/{batch}/result", self, get=self.batch_result)
        router.add(BASE + "/{job}/batch/{batch}/result/{result}", self, get=self.query_result)
        router.add(BASE + "/{job}/spec", self, post=self.spec)

    @staticmethod
    def version(params: dict[str, str]) -> str:
        return api_version(params["ver"])

    async def _job(self, request: Request, params: dict[str, str]) -> Job:
        self.version(params)
        job = await run_in_threadpool(self.service.get_job, params["job"], caller_of(request))
        request.state.bulk1_job = job  # errors from here on answer in the job's format
        return job

    @staticmethod
    async def _fields(request: Request, version: str) -> dict[str, object]:
        data = await body.read_all(request)
        as_json = request_is_json(request)
        if as_json and float(version) < JSON_SINCE:
            request.state.xml_only = True
            raise ServiceError(Kind.INVALID_JOB, "Unable to parse Job")
        try:
            return bulk1.parse_job_body(data, as_json)
        except bulk1.PayloadError as e:
            raise ServiceError(e.kind, str(e)) from None

    async def create(self, request: Request, params: dict[str, str]) -> Response:
        version = self.version(params)
        fields = await self._fields(request, version)
        job = await run_in_threadpool(
            self.service.create, version, fields, caller_id(request),
            request.headers.get(PK_HEADER), request.headers.get("Sforce-Line-Ending"),
        )  # fmt: skip
        view = await run_in_threadpool(self.service.view, job)
        as_json = request_is_json(request)
        return respond(bulk1.job_info(view, as_json), as_json, 201)

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        view = await run_in_threadpool(self.service.view, job)
        return respond(bulk1.job_info(view, job_is_json(job)), job_is_json(job))

    async def update(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        # R3: the answer uses the request body's format; errors stay in the job's (R5)
        fields = await self._fields(request, self.version(params))
        job = await run_in_threadpool(self.service.update, job, fields)
        view = await run_in_threadpool(self.service.view, job)
        as_json = request_is_json(request)
        return respond(bulk1.job_info(view, as_json), as_json)

    async def add_batch(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        try:
            payload = await body.read_all(request, limit=MAX_BATCH_BYTES)
        except ServiceError as e:
            if e.kind is not Kind.INVALID_JOB:  # the size limit; decoding errors pass through
                raise
            raise ServiceError(
                Kind.INVALID_BATCH,
                f"Exceeded max size limit of {MAX_BATCH_BYTES} bytes for a batch",
            ) from None
        batch = await run_in_threadpool(
            self.service.add_batch, job, body.media_type(request), payload
        )
        return respond(bulk1.batch_info(batch, job_is_json(job)), job_is_json(job), 201)

    async def list_batches(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        batches = await run_in_threadpool(self.service.list_batches, job)
        return respond(bulk1.batch_list(batches, job_is_json(job)), job_is_json(job))

    async def get_batch(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        batch = await run_in_threadpool(self.service.get_batch, job, params["batch"])
        return respond(bulk1.batch_info(batch, job_is_json(job)), job_is_json(job))

    async def batch_request(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        batch = await run_in_threadpool(self.service.get_batch, job, params["batch"])
        data = await run_in_threadpool(self.service.request, batch)
        return Response(data, headers={"Content-Type": DATA_MEDIA[job.content_type]})

    async def batch_result(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        batch = await run_in_threadpool(self.service.get_batch, job, params["batch"])
        if job.operation.is_query:
            result_ids = await run_in_threadpool(self.queries.result_ids, batch)
            as_json = job_is_json(job)
            return respond(bulk1query.result_list(result_ids, as_json), as_json)
        data = await run_in_threadpool(self.service.result, batch)
        return Response(data, headers={"Content-Type": DATA_MEDIA[job.content_type]})

    async def query_result(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        batch = await run_in_threadpool(self.service.get_batch, job, params["batch"])
        if not job.operation.is_query:
            raise ServiceError(Kind.INVALID_BATCH, "Result ids belong to query batches only")
        chunks = await run_in_threadpool(self.queries.result, job, batch, params["result"])
        # streamed: a result of any size goes out in blocks, never whole in memory
        return StreamingResponse(
            chunks, media_type=None, headers={"Content-Type": DATA_MEDIA[job.content_type]}
        )

    async def spec(self, request: Request, params: dict[str, str]) -> Response:
        job = await self._job(request, params)
        payload = await body.read_all(request)
        await run_in_threadpool(self.service.set_spec, job, payload)
        return Response(status_code=201, headers={"Content-Type": "application/xml"})
