"""Object pages (schema, row counts, records with paging, sorting and look-up) and the admin
reset. Each handler calls the org service the REST resources call."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bulkforce.console.app import ConsoleBase
from bulkforce.console.session import ConsoleSession
from bulkforce.engine.show import render_object
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.access import require_admin
from bulkforce.jobs.org import OrgService
from bulkforce.jobs.rest_query import RestQueryService

PAGE_SIZE = 50
QUERY_PAGE = 200  # the smallest REST query batch
QUERY_VERSION = "66.0"


def _cell(value: Any) -> str:
    """A query value as table text: nested records and child lists as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        if isinstance(value, dict) and "records" in value:  # a child subquery's answer
            value = value["records"]
        strip = [{k: v for k, v in r.items() if k != "attributes"} if isinstance(r, dict) else r
                 for r in (value if isinstance(value, list) else [value])]  # fmt: skip
        return json.dumps(strip if isinstance(value, list) else strip[0], ensure_ascii=False)
    return str(value)


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() else default


class ObjectPages:
    def __init__(self, base: ConsoleBase) -> None:
        self.base = base
        self.org = OrgService(base.ctx)
        self.queries = RestQueryService(base.ctx)

    def routes(self) -> list[BaseRoute]:
        g = self.base.guard
        return [
            Route("/objects", g(self.objects_page), methods=["GET"]),
            Route("/objects/{name}", g(self.object_page), methods=["GET"]),
            Route("/admin", g(self.admin_page), methods=["GET", "POST"]),
            Route("/query", g(self.query_page), methods=["GET"]),
        ]

    def _counts(self) -> list[tuple[Any, int]]:
        return [(obj, self.org.record_count(obj.name)) for obj in self.org.sobjects()]

    async def objects_page(self, request: Request, session: ConsoleSession) -> Response:
        objects = await run_in_threadpool(self._counts)
        return self.base.render("objects.html", session, nav="objects", objects=objects)

    def _object(self, name: str, q: dict[str, str]) -> dict[str, Any]:
        obj = self.org.sobject(name)
        sort = q.get("sort") or "Id"
        descending = q.get("dir") == "desc"
        page = _int(q.get("page"), 0)
        find = (q.get("field") or "Id", q["find"]) if q.get("find") else None
        records = self.org.browse(obj.name, sort, descending, page, PAGE_SIZE + 1, find)
        keys = [f for f in obj.fields.values() if f.name == "Id" or f.external_id or f.id_lookup]
        return {
            "obj": obj, "count": self.org.record_count(obj.name),
            "schema_text": render_object(self.base.ctx.schema, obj), "keys": keys,
            "columns": list(obj.fields.values()), "records": records[:PAGE_SIZE],
            "more": len(records) > PAGE_SIZE, "page": page, "sort": sort,
            "descending": descending, "find": q.get("find", ""), "field": q.get("field", "Id"),
        }  # fmt: skip

    async def object_page(self, request: Request, session: ConsoleSession) -> Response:
        q = dict(request.query_params)
        view = await run_in_threadpool(self._object, request.path_params["name"], q)
        return self.base.render("object.html", session, nav="objects", **view)

    async def query_page(self, request: Request, session: ConsoleSession) -> Response:
        """The SOQL box: one page of the REST query resource's answer, as a table."""
        q = request.query_params
        text, locator, all_rows = q.get("q", ""), q.get("locator"), q.get("all") == "1"
        page: dict[str, Any] | None = None
        error = None
        try:
            if locator:
                page = await run_in_threadpool(self.queries.more, QUERY_VERSION, locator)
            elif text.strip():
                page = await run_in_threadpool(
                    self.queries.query, QUERY_VERSION, text, all_rows, QUERY_PAGE
                )
        except ServiceError as e:
            error = f"{e.code or e.kind.value.upper()}: {e.message}"
        records = page["records"] if page else []
        columns = list(dict.fromkeys(k for r in records for k in r if k != "attributes"))
        next_locator = None
        if page and page.get("nextRecordsUrl"):
            next_locator = str(page["nextRecordsUrl"]).rsplit("/", 1)[1]
        return self.base.render(
            "query.html", session, nav="objects", q=text, all_rows=all_rows, error=error,
            page=page, columns=columns, rows=[[_cell(r.get(c)) for c in columns] for r in records],
            next_locator=next_locator,
        )  # fmt: skip

    async def admin_page(self, request: Request, session: ConsoleSession) -> Response:
        require_admin(session.caller, "reset the org's records")
        names = [o.name for o in self.org.sobjects()]
        if request.method == "GET":
            return self.base.render("admin.html", session, nav="admin", names=names, done=None)
        form = request.state.form
        target = str(form.get("object") or "")
        if target and target not in names:
            raise ServiceError(Kind.NOT_FOUND, f"No object named {target}")
        if form.get("confirm") != "yes":
            what = f"every {target} record" if target else "the records of every object"
            return self.base.render(
                "confirm.html", session, title="Reset data?", action="/admin",
                button="Delete records", cancel="/admin", hidden={"object": target, "confirm": "yes"},
                detail=f"This deletes {what} for good. Schema, jobs and users stay.",
            )  # fmt: skip
        deleted = await run_in_threadpool(self.org.reset, target or None)
        return self.base.render("admin.html", session, nav="admin", names=names, done=deleted)
