"""REST record calls: sObject rows (create, read, update, upsert, delete, by external id) and
sObject collections. Parse, call the record service, render.

Every handler is a plain function from a `Call` to a `Reply`, so a composite request can run
the same handlers for its subrequests in one thread and one transaction (http/composite.py);
`register` wraps each one for HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulkforce.errors import Kind, ServiceError
from bulkforce.http import body as bodies
from bulkforce.http.auth import caller_id
from bulkforce.http.bulk2 import JSON_TYPE
from bulkforce.http.rest import BASE, version_of
from bulkforce.http.routing import Handler, Router
from bulkforce.jobs.org import OrgService
from bulkforce.jobs.records import Outcome, RecordService, modified
from bulkforce.jobs.tree import TreeService
from bulkforce.model import Operation
from bulkforce.wire import records as wire
from bulkforce.wire import rest


@dataclass
class Call:
    """One record call as a handler sees it, from HTTP or from a composite subrequest."""

    method: str
    params: dict[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any  # parsed JSON; None when there was no body
    user_id: str

    @property
    def version(self) -> str:
        return version_of(self.params)

    def json_object(self) -> dict[str, Any]:
        if self.body is None:
            raise ServiceError(Kind.JSON_PARSE, "The request body is empty")
        return wire.json_object(self.body)


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able; None: no body
    headers: dict[str, str] = field(default_factory=dict)


SyncHandler = Callable[[Call], Reply]
# 200 records with long text fields can pass the 1 MB of a job spec; the record count bounds
# the work, this bounds the memory.
RECORD_BODY_LIMIT = 20 * 1024 * 1024


def error_reply(err: ServiceError) -> Reply:
    status, payload = wire.error_body(err.kind, err.message)
    return Reply(status, payload)


def run(handler: SyncHandler, call: Call) -> Reply:
    try:
        return handler(call)
    except ServiceError as e:
        return error_reply(e)


def render(reply: Reply, head: bool = False) -> Response:
    headers = dict(reply.headers)
    if reply.body is None or head:
        if reply.body is not None:
            headers["Content-Type"] = JSON_TYPE
        return Response(b"", status_code=reply.status, headers=headers)
    headers["Content-Type"] = JSON_TYPE
    return Response(json.dumps(reply.body), status_code=reply.status, headers=headers)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _http_date(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value.strip(), "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=dt.UTC
        )
    except ValueError:
        return None


class RecordRoutes:
    def __init__(self, service: RecordService, org: OrgService) -> None:
        self.service = service
        self.trees = TreeService(service)
        self.org = org
        self.table: dict[str, dict[str, SyncHandler]] = {}

    def error(self, request: Request, err: ServiceError) -> Response:
        return render(error_reply(err))

    def resources(self) -> list[tuple[str, dict[str, SyncHandler]]]:
        return [
            (BASE + "/sobjects/{sobject}", {"POST": self.create}),
            (
                BASE + "/sobjects/{sobject}/{record}",
                {"GET": self.get, "HEAD": self.get, "PATCH": self.update, "DELETE": self.delete},
            ),
            (
                BASE + "/sobjects/{sobject}/{field}/{value}",
                {"GET": self.get_external, "HEAD": self.get_external, "PATCH": self.upsert},
            ),
            (
                BASE + "/composite/sobjects",
                {"POST": self.create_many, "PATCH": self.update_many, "DELETE": self.delete_many},
            ),
            (
                BASE + "/composite/sobjects/{sobject}",
                {"GET": self.retrieve_many, "POST": self.retrieve_many},
            ),
            (BASE + "/composite/sobjects/{sobject}/{field}", {"PATCH": self.upsert_many}),
            (BASE + "/composite/tree/{sobject}", {"POST": self.tree}),
        ]

    def register(self, router: Router) -> None:
        for template, methods in self.resources():
            self.table[template] = methods
            router.add_verbs(template, self, {verb: self._http(fn) for verb, fn in methods.items()})

    def handlers(self, template: str) -> dict[str, SyncHandler] | None:
        """The plain handlers behind one of this module's routes, for composite subrequests."""
        return self.table.get(template)

    def _http(self, handler: SyncHandler) -> Handler:
        async def serve(request: Request, params: dict[str, str]) -> Response:
            try:
                version_of(params)
                raw = (
                    await bodies.read_all(request, RECORD_BODY_LIMIT)
                    if request.method in ("POST", "PATCH")
                    else b""
                )
                parsed = wire.parse_body(raw) if raw.strip() else None
            except ServiceError as e:
                return render(error_reply(e))
            call = Call(
                request.method, params, request.query_params, request.headers, parsed,
                caller_id(request),
            )  # fmt: skip
            reply = await run_in_threadpool(run, handler, call)
            return render(reply, head=request.method == "HEAD")

        return serve

    # ---- sObject rows ------------------------------------------------------------------------

    def create(self, call: Call) -> Reply:
        result = self.service.create(call.user_id, call.params["sobject"], call.json_object())
        if result.error is not None:
            return Reply(400, wire.record_errors(result.error))
        obj = self.service.sobject(call.params["sobject"])
        url = wire.record_urls(obj, [result.id], call.version)[0]
        return Reply(201, wire.save_result(result), {"Location": url})

    def get(self, call: Call) -> Reply:
        ver = call.version
        name, rid = call.params["sobject"], call.params["record"]
        obj = self.org.sobject(name)
        since = call.headers.get("if-modified-since")
        if since is not None and (limit := _http_date(since)) is not None:
            row = self.org.record(name, rid, ["LastModifiedDate"])
            if modified(row) <= limit:
                return Reply(304)
        values = self.org.record(name, rid, _split(call.query.get("fields")) or None)
        return Reply(200, rest.record(obj, values, ver, rid))

    def update(self, call: Call) -> Reply:
        result = self.service.update(
            call.user_id, call.params["sobject"], call.params["record"], call.json_object(),
            call.headers.get("if-unmodified-since"),
        )  # fmt: skip
        if result.error is not None:
            return Reply(400, wire.record_errors(result.error))
        return Reply(204)

    def delete(self, call: Call) -> Reply:
        result = self.service.delete(call.user_id, call.params["sobject"], call.params["record"])
        if result.error is not None:
            return Reply(400, wire.record_errors(result.error))
        return Reply(204)

    def get_external(self, call: Call) -> Reply:
        ver = call.version
        obj, found = self.service.get_by_external(
            call.params["sobject"], call.params["field"], call.params["value"]
        )
        if len(found) > 1:
            return Reply(300, wire.record_urls(obj, found, ver))
        if not found:
            raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
        values = self.org.record(obj.name, found[0], _split(call.query.get("fields")) or None)
        return Reply(200, rest.record(obj, values, ver, found[0]))

    def upsert(self, call: Call) -> Reply:
        ver = call.version
        name, key, value = call.params["sobject"], call.params["field"], call.params["value"]
        result = self.service.upsert(call.user_id, name, key, value, call.json_object())
        obj = self.service.sobject(name)
        if isinstance(result, list):
            return Reply(300, wire.record_urls(obj, result, ver))
        if result.error is not None:
            return Reply(400, wire.record_errors(result.error))
        created = result.created
        if float(ver) < 46:  # `created` and 200 on update arrived in 46.0
            if not created:
                return Reply(204)
            return Reply(201, wire.save_result(result))
        url = wire.record_urls(obj, [result.id], ver)[0]
        return Reply(
            201 if created else 200, wire.save_result(result, upsert=True), {"Location": url}
        )

    # ---- sObject collections -----------------------------------------------------------------

    def _records(self, call: Call) -> tuple[Any, bool]:
        spec = call.json_object()
        return spec.get("records"), _flag(spec.get("allOrNone"))

    @staticmethod
    def _results(outcome: Outcome, with_id: bool, upsert: bool = False) -> Reply:
        return Reply(
            200,
            [
                wire.collection_result(
                    r, rolled_back=outcome.rolled_back, with_id=with_id, upsert=upsert
                )
                for r in outcome.results
            ],
        )

    def create_many(self, call: Call) -> Reply:
        records, aon = self._records(call)
        outcome = self.service.save_many(call.user_id, Operation.INSERT, records, aon)
        return self._results(outcome, with_id=False)

    def update_many(self, call: Call) -> Reply:
        records, aon = self._records(call)
        outcome = self.service.save_many(call.user_id, Operation.UPDATE, records, aon)
        return self._results(outcome, with_id=True)

    def upsert_many(self, call: Call) -> Reply:
        records, aon = self._records(call)
        outcome = self.service.save_many(
            call.user_id, Operation.UPSERT, records, aon, call.params["sobject"],
            call.params["field"],
        )  # fmt: skip
        return self._results(outcome, with_id=True, upsert=True)

    def delete_many(self, call: Call) -> Reply:
        raw_ids = _split(call.query.get("ids"))
        if not raw_ids:
            raise ServiceError(Kind.INVALID_INPUT, "The ids parameter is required")
        outcome = self.service.delete_many(
            call.user_id, raw_ids, _flag(call.query.get("allOrNone"))
        )
        return self._results(outcome, with_id=True)

    def retrieve_many(self, call: Call) -> Reply:
        if call.method == "POST":
            spec = call.json_object()
            raw_ids, fields = spec.get("ids"), spec.get("fields")
            if not isinstance(raw_ids, list) or not isinstance(fields, list):
                raise ServiceError(Kind.JSON_PARSE, "'ids' and 'fields' must be lists")
            raw_ids, fields = [str(i) for i in raw_ids], [str(f) for f in fields]
        else:
            raw_ids, fields = _split(call.query.get("ids")), _split(call.query.get("fields"))
        if not fields:
            raise ServiceError(Kind.INVALID_INPUT, "The fields parameter is required")
        obj, rows = self.service.retrieve_many(call.params["sobject"], raw_ids, fields)
        return Reply(
            200,
            [None if r is None else rest.record(obj, r[1], call.version, r[0]) for r in rows],
        )

    # ---- sObject tree ------------------------------------------------------------------------

    def tree(self, call: Call) -> Reply:
        result = self.trees.create(call.user_id, call.params["sobject"], call.json_object())
        body = wire.tree_body(result.created, result.errors)
        return Reply(400 if result.errors else 201, body)
