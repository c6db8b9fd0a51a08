"""Query routes: REST `/query` and `/queryAll` (query.md §6) and Bulk API 2.0 query jobs
(`/jobs/query`, bulk-api.md §4). Parse, call the service, render."""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bulkforce.errors import Kind, ServiceError
from bulkforce.http.auth import caller_id, caller_of
from bulkforce.http.bulk2 import error_response, job_filter, json_response, json_spec, next_list_url
from bulkforce.http.rest import version_of as rest_version
from bulkforce.http.routing import Router
from bulkforce.jobs.query import QueryJobService
from bulkforce.jobs.rest_query import RestQueryService, batch_size
from bulkforce.model import JobState
from bulkforce.wire import bulk2, rest
from bulkforce.wire import query as wire

REST = "/services/data/v{ver}"
JOBS = "/services/data/v{ver}/jobs/query"
_VERSION = re.compile(r"(\d{2})\.0")


def jobs_version(params: dict[str, str]) -> str:
    """Bulk 2.0 query exists from API 47.0 (bulk-api.md §4)."""
    m = _VERSION.fullmatch(params["ver"])
    if not m or not 47 <= int(m[1]) <= 66:
        raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
    return f"{m[1]}.0"


def _gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        if out := z.compress(chunk):
            yield out
    yield z.flush()


def wants_gzip(request: Request) -> bool:
    return any(
        part.split(";")[0].strip().lower() == "gzip"
        for part in request.headers.get("accept-encoding", "").split(",")
    )


class RestQueryRoutes:
    """`GET /query?q=`, `/queryAll?q=` (with or without the trailing slash: the router folds
    it), `explain=`, `columns=true`, and `/query/{locator}` for queryAll cursors too."""

    def __init__(self, service: RestQueryService) -> None:
        self.queries = service

    def error(self, request: Request, err: ServiceError) -> Response:
        status, payload = rest.error_body(err.kind, err.message, err.code)
        return json_response(payload, status)

    def register(self, router: Router) -> None:
        router.add(REST + "/query", self, get=self.query)
        router.add(REST + "/queryAll", self, get=self.query_all)
        router.add(REST + "/query/{locator}", self, get=self.more)
        router.add(REST + "/queryAll/{locator}", self, get=self.more)

    async def _query(self, request: Request, params: dict[str, str], all_rows: bool) -> Response:
        ver = rest_version(params)
        q = request.query_params  # form-decoded: `+` is a space (query.md §1.2)
        if "explain" in q:
            return json_response(await run_in_threadpool(self.queries.explain, q["explain"]))
        text = q.get("q")
        if text is None or not text.strip():
            raise ServiceError(Kind.QUERY, "unexpected token: '<EOF>'")
        if q.get("columns", "").lower() == "true":
            meta = await run_in_threadpool(self.queries.columns, text, all_rows)
            return json_response(meta)
        batch = batch_size(request.headers.get("sforce-query-options"))
        page = await run_in_threadpool(self.queries.query, ver, text, all_rows, batch)
        return json_response(page)

    async def query(self, request: Request, params: dict[str, str]) -> Response:
        return await self._query(request, params, False)

    async def query_all(self, request: Request, params: dict[str, str]) -> Response:
        return await self._query(request, params, True)

    async def more(self, request: Request, params: dict[str, str]) -> Response:
        ver = rest_version(params)
        return json_response(await run_in_threadpool(self.queries.more, ver, params["locator"]))


class QueryJobRoutes:
    def __init__(self, service: QueryJobService) -> None:
        self.service = service

    def error(self, request: Request, err: ServiceError) -> Response:
        return error_response(err)

    def register(self, router: Router) -> None:
        router.add(JOBS, self, get=self.list_jobs, post=self.create)
        router.add(JOBS + "/{job}", self, get=self.get, patch=self.patch, delete=self.delete)
        router.add(JOBS + "/{job}/results", self, get=self.results)
        router.add(JOBS + "/{job}/resultPages", self, get=self.result_pages)

    async def create(self, request: Request, params: dict[str, str]) -> Response:
        # `Accept: text/csv` (simple-salesforce) still gets JSON: the job info is JSON only.
        version = jobs_version(params)
        spec = await json_spec(request)
        job = await run_in_threadpool(self.service.create, version, spec, caller_id(request))
        return json_response(wire.job_info(job, created=True))

    async def list_jobs(self, request: Request, params: dict[str, str]) -> Response:
        version = jobs_version(params)
        flt = job_filter(request, ("V2Query",))
        jobs, locator = await run_in_threadpool(
            self.service.list_jobs, flt, request.query_params.get("queryLocator"),
            caller_of(request),
        )  # fmt: skip
        next_url = next_list_url(request, f"/services/data/v{version}/jobs/query", locator)
        return json_response(bulk2.job_list(jobs, next_url, wire.job_info))

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        jobs_version(params)
        return json_response(
            wire.job_info(
                await run_in_threadpool(self.service.get, params["job"], caller_of(request))
            )
        )

    async def patch(self, request: Request, params: dict[str, str]) -> Response:
        jobs_version(params)
        spec = await json_spec(request)
        state = spec.get("state") if isinstance(spec, dict) else None
        if state != JobState.ABORTED:
            await run_in_threadpool(
                self.service.get, params["job"], caller_of(request)
            )  # 404 before 400
            raise ServiceError(
                Kind.INVALID_JOB, f"InvalidJob : Invalid state: {state!r}. Use Aborted"
            )
        job = await run_in_threadpool(self.service.abort, params["job"], caller_of(request))
        return json_response(wire.job_info(job, created=True))

    async def delete(self, request: Request, params: dict[str, str]) -> Response:
        jobs_version(params)
        await run_in_threadpool(self.service.delete, params["job"], caller_of(request))
        return Response(status_code=204)

    async def results(self, request: Request, params: dict[str, str]) -> Response:
        version = jobs_version(params)
        q = request.query_params
        page = await run_in_threadpool(
            self.service.results, params["job"], version, q.get("locator"), q.get("maxRecords"),
            caller_of(request),
        )  # fmt: skip
        headers = {
            "Content-Type": "text/csv; charset=UTF-8",
            "Sforce-Locator": page.locator,
            "Sforce-NumberOfRecords": str(page.rows),
        }

        def chunks() -> Iterator[bytes]:
            yield page.header
            yield from page.body

        stream: Iterator[bytes] = chunks()
        if wants_gzip(request):
            headers["Content-Encoding"] = "gzip"
            stream = _gzip(stream)
        return StreamingResponse(_threaded(stream), media_type=None, headers=headers)

    async def result_pages(self, request: Request, params: dict[str, str]) -> Response:
        version = jobs_version(params)
        if float(version) < 58.0:
            raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
        q = request.query_params
        urls, next_url = await run_in_threadpool(
            self.service.result_pages, params["job"], version, q.get("locator"),
            q.get("maxRecords"), caller_of(request),
        )  # fmt: skip
        return json_response(wire.result_pages(urls, next_url))


async def _threaded(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # PostgreSQL blob reads are queries: keep them off the event loop
    async for chunk in iterate_in_threadpool(chunks):
        yield chunk
