"""Job pages: the list of every API's jobs, one job with its progress, history, batches and
failures, downloads, abort and delete. Each handler calls the services the APIs call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bulkforce.console.app import ConsoleBase
from bulkforce.console.session import ConsoleSession
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.access import Caller
from bulkforce.jobs.classic import DATA_MEDIA, ClassicService
from bulkforce.jobs.query import QueryJobService
from bulkforce.jobs.service import IngestService
from bulkforce.model import Job, JobFilter, JobState, Operation
from bulkforce.wire import bulk1, bulk2
from bulkforce.wire import query as query_wire

APIS = {"V2Ingest": "Bulk 2.0 ingest", "V2Query": "Bulk 2.0 query", "Classic": "Bulk 1.0"}
STATES = [s.value for s in JobState]
OPERATIONS = list(dict.fromkeys([*(o.value for o in Operation), "query", "queryAll"]))
RESULTS = {"success": "successful", "failed": "failed", "unprocessed": "unprocessed"}
LIST_SIZE = 200


def _running(job: Job) -> bool:
    return job.state in (JobState.UPLOAD_COMPLETE, JobState.IN_PROGRESS)


class JobPages:
    def __init__(self, base: ConsoleBase) -> None:
        self.base = base
        self.ingest = IngestService(base.ctx)
        self.classic = ClassicService(base.ctx)
        self.queries = QueryJobService(base.ctx)

    def routes(self) -> list[BaseRoute]:
        g = self.base.guard
        return [
            Route("/", g(self.jobs_page), methods=["GET"]),
            Route("/jobs/table", g(self.jobs_table, fragment=True), methods=["GET"]),
            Route("/jobs/{job}", g(self.job_page), methods=["GET"]),
            Route("/jobs/{job}/live", g(self.job_live, fragment=True), methods=["GET"]),
            Route("/jobs/{job}/abort", g(self.abort), methods=["GET", "POST"]),
            Route("/jobs/{job}/delete", g(self.delete), methods=["GET", "POST"]),
            Route("/jobs/{job}/query-results", g(self.query_results), methods=["GET"]),
            Route("/jobs/{job}/results/{kind}", g(self.results), methods=["GET"]),
            Route("/jobs/{job}/batches/{batch}/{part}", g(self.batch_data), methods=["GET"]),
        ]

    # ---- the list ----------------------------------------------------------------------------

    def _filters(self, request: Request) -> dict[str, str]:
        q = request.query_params
        return {k: q[k] for k in ("api", "state", "object", "operation") if q.get(k)}

    def _list(self, filters: dict[str, str], caller: Caller) -> dict[str, Any]:
        flt = JobFilter(
            job_type=filters.get("api"), state=filters.get("state"),
            object=filters.get("object"), operation=filters.get("operation"),
        )  # fmt: skip
        jobs = self.ingest.recent(flt, caller, LIST_SIZE)
        return {"jobs": jobs, "running": any(_running(j) for j in jobs), "apis": APIS}

    async def jobs_page(self, request: Request, session: ConsoleSession) -> Response:
        filters = self._filters(request)
        data = await run_in_threadpool(self._list, filters, session.caller)
        return self.base.render(
            "jobs.html", session, filters=filters, query=request.url.query, states=STATES,
            operations=OPERATIONS, **data,
        )  # fmt: skip

    async def jobs_table(self, request: Request, session: ConsoleSession) -> Response:
        data = await run_in_threadpool(self._list, self._filters(request), session.caller)
        return self.base.render("_jobs_table.html", session, **data)

    # ---- one job -----------------------------------------------------------------------------

    def _view(self, raw_id: str, caller: Caller) -> dict[str, Any]:
        job = self.ingest.find(raw_id, caller)
        out: dict[str, Any] = {"job": job, "api": APIS.get(job.job_type, job.job_type)}
        out["history"] = self.ingest.history(job.id)
        out["running"] = not job.state.terminal
        out["failures"], out["failure_header"] = [], []
        if job.job_type == "Classic":
            job, stats = self.classic.view(job)
            batches = self.classic.list_batches(job)
            out["fields"] = bulk1.job_fields((job, stats))
            out["batches"] = [(b, bulk1.batch_fields(b)) for b in batches]
            total = sum(b.record_count for b in batches)
            out["total"] = total
            out["processed"] = stats.records_processed
            ended = stats.completed + stats.failed + stats.not_processed
            out["percent"] = 100 * ended // stats.total if stats.total else None
            out["running"] = job.state is JobState.OPEN or stats.queued + stats.in_progress > 0
            if stats.records_failed:
                out["failure_header"], out["failures"] = self.classic.failures(job)
            out["can_abort"] = job.state in (JobState.OPEN, JobState.CLOSED)
            out["can_delete"] = False
        elif job.job_type == "V2Query":
            out["fields"] = query_wire.job_info(job)
            out["batches"], out["processed"], out["total"] = [], job.records_processed, None
            out["percent"] = 100 if job.state.terminal else None
            out["can_abort"] = not job.state.terminal
            out["can_delete"] = job.state.terminal
        else:
            out["fields"] = bulk2.job_info(job)
            out["batches"] = []
            out["processed"] = job.records_processed
            out["total"] = job.upload_rows
            if job.state.terminal:
                out["percent"] = 100
            elif job.upload_rows:
                out["percent"] = min(99, 100 * job.records_processed // job.upload_rows)
            else:
                out["percent"] = (
                    0 if job.state in (JobState.OPEN, JobState.UPLOAD_COMPLETE) else None
                )
            out["can_abort"] = not job.state.terminal
            out["can_delete"] = job.state.terminal or job.state is JobState.UPLOAD_COMPLETE
            if job.job_type == "V2Ingest" and job.state is not JobState.OPEN and job.records_failed:
                out["failure_header"], out["failures"] = self.ingest.failures(job.id, caller)
        out["downloads"] = job.job_type == "V2Ingest" and job.state is not JobState.OPEN
        out["query_download"] = job.job_type == "V2Query" and job.state is JobState.JOB_COMPLETE
        out["job"] = job
        return out

    async def job_page(self, request: Request, session: ConsoleSession) -> Response:
        view = await run_in_threadpool(self._view, request.path_params["job"], session.caller)
        return self.base.render("job.html", session, **view)

    async def job_live(self, request: Request, session: ConsoleSession) -> Response:
        view = await run_in_threadpool(self._view, request.path_params["job"], session.caller)
        return self.base.render("_job_body.html", session, **view)

    def _abort(self, raw_id: str, caller: Caller) -> None:
        job = self.ingest.find(raw_id, caller)
        if job.job_type == "Classic":
            self.classic.update(job, {"state": "Aborted"})
        elif job.job_type == "V2Ingest":
            self.ingest.abort(job.id, caller)
        elif job.job_type == "V2Query":
            self.queries.abort(job.id, caller)
        else:
            raise ServiceError(Kind.INVALID_JOB_STATE, "This kind of job cannot be aborted here")

    def _delete(self, raw_id: str, caller: Caller) -> None:
        job = self.ingest.find(raw_id, caller)
        if job.job_type == "V2Query":
            self.queries.delete(job.id, caller)
        elif job.job_type == "V2Ingest":
            self.ingest.delete(job.id, caller)
        else:
            raise ServiceError(Kind.INVALID_JOB_STATE, "Only Bulk 2.0 jobs can be deleted")

    async def _confirmed(
        self, request: Request, session: ConsoleSession, verb: str, done: str
    ) -> Response:
        raw_id = request.path_params["job"]
        if request.method == "GET":
            job = await run_in_threadpool(self.ingest.find, raw_id, session.caller)
            return self.base.render(
                "confirm.html", session, title=f"{verb} job {job.id}?", action=request.url.path,
                button=f"{verb} job", cancel=f"/jobs/{job.id}",
                detail=f"{job.operation.value} {job.object}, {job.state.value}",
            )  # fmt: skip
        if verb == "Abort":
            await run_in_threadpool(self._abort, raw_id, session.caller)
            return RedirectResponse(f"/jobs/{raw_id}", status_code=303)
        await run_in_threadpool(self._delete, raw_id, session.caller)
        return RedirectResponse(done, status_code=303)

    async def abort(self, request: Request, session: ConsoleSession) -> Response:
        return await self._confirmed(request, session, "Abort", "")

    async def delete(self, request: Request, session: ConsoleSession) -> Response:
        return await self._confirmed(request, session, "Delete", "/")

    # ---- downloads ---------------------------------------------------------------------------

    async def results(self, request: Request, session: ConsoleSession) -> Response:
        kind = request.path_params["kind"]
        if kind not in RESULTS:
            raise ServiceError(Kind.NOT_FOUND, "No such result")
        job, chunks = await run_in_threadpool(
            self.ingest.results, request.path_params["job"], kind, session.caller
        )
        return _download(chunks, "text/csv; charset=UTF-8", f"{job.id}-{RESULTS[kind]}.csv")

    def _query_results(self, raw_id: str, caller: Caller) -> tuple[Job, Iterator[bytes]]:
        """A query job's whole result: the header once, then every page the API serves."""
        job = self.ingest.find(raw_id, caller)
        first = self.queries.results(job.id, job.api_version, None, None, caller)

        def chunks() -> Iterator[bytes]:
            page = first
            yield page.header
            while True:
                yield from page.body
                if page.locator == "null":
                    return
                page = self.queries.results(job.id, job.api_version, page.locator, None, caller)

        return job, chunks()

    async def query_results(self, request: Request, session: ConsoleSession) -> Response:
        job, chunks = await run_in_threadpool(
            self._query_results, request.path_params["job"], session.caller
        )
        return _download(chunks, "text/csv; charset=UTF-8", f"{job.id}-results.csv")

    async def batch_data(self, request: Request, session: ConsoleSession) -> Response:
        part = request.path_params["part"]
        if part not in ("request", "result"):
            raise ServiceError(Kind.NOT_FOUND, "No such batch download")
        job = await run_in_threadpool(
            self.classic.get_job, request.path_params["job"], session.caller
        )
        batch = await run_in_threadpool(self.classic.get_batch, job, request.path_params["batch"])
        read = self.classic.request if part == "request" else self.classic.result
        data = await run_in_threadpool(read, batch)
        ext = job.content_type.lower()
        return _download(iter([data]), DATA_MEDIA[job.content_type], f"{batch.id}-{part}.{ext}")


def _download(chunks: Iterator[bytes], media: str, filename: str) -> Response:
    return StreamingResponse(
        chunks, headers={
            "Content-Type": media, "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )  # fmt: skip
