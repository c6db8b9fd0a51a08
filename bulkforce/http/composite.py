"""`POST composite`: up to 25 record subrequests in one call, later ones referring to earlier
results with `@{ref.id}` or `@{ref.records[0].Id}`.

Subrequests run in order in one worker thread through the same handlers as the HTTP calls
(http/records.py). With allOrNone they share one transaction: the first failure rolls
everything back and every other subrequest answers PROCESSING_HALTED.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from anyio import from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bulkforce.auth.service import Principal
from bulkforce.errors import Kind, ServiceError
from bulkforce.http import body as bodies
from bulkforce.http.auth import principal_of
from bulkforce.http.records import (
    RECORD_BODY_LIMIT,
    Call,
    RecordRoutes,
    Reply,
    error_reply,
    render,
    run,
)
from bulkforce.http.rest import BASE, version_of
from bulkforce.http.routing import Route, Router
from bulkforce.jobs.records import Rollback
from bulkforce.wire import composite as wire
from bulkforce.wire import records as wire_records
from bulkforce.wire.decode import DecodeError, load_json

MAX_SUBREQUESTS = 25
_REF = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_STEP = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")


class Unresolved(Exception):
    def __init__(self, ref: str, path: str) -> None:
        self.ref, self.path = ref, path


def _lookup(results: dict[str, Any], ref: str, path: str) -> Any:
    if ref not in results:
        raise Unresolved(ref, path)
    value = results[ref]
    for key, index in _STEP.findall(path):
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            raise Unresolved(ref, path) from None
    if value is None or isinstance(value, dict | list):
        raise Unresolved(ref, path)
    return value


def resolve(value: Any, results: dict[str, Any]) -> Any:
    """`@{ref.path}` references replaced by earlier results: a string that is one reference
    takes the value's JSON type, references inside a longer string its text."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _lookup(results, whole[1], whole[2])
        return _REF.sub(lambda m: str(_lookup(results, m[1], m[2])), value)
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Caller:
    """Who sent the composite request, and the outer request's scope (host, scheme) that its
    GET subrequests answer under."""

    principal: Principal
    scope: Mapping[str, Any]


class CompositeRoutes:
    def __init__(self, records: RecordRoutes, router: Router) -> None:
        self.records = records
        self.router = router  # reads beyond the record resources (describe, limits, query)

    def error(self, request: Request, err: ServiceError) -> Response:
        return render(error_reply(err))

    def register(self, router: Router) -> None:
        router.add(BASE + "/composite", self, post=self.composite)

    async def composite(self, request: Request, params: dict[str, str]) -> Response:
        try:
            version_of(params)
            spec = wire_records.json_object(
                wire_records.parse_body(await bodies.read_all(request, RECORD_BODY_LIMIT))
            )
            subs = wire.subrequests(spec, MAX_SUBREQUESTS)
        except ServiceError as e:
            return render(error_reply(e))
        all_or_none = spec.get("allOrNone") is True
        caller = Caller(principal_of(request), request.scope)
        replies = await run_in_threadpool(self._run_all, subs, all_or_none, caller)
        return render(Reply(200, wire.composite_body(subs, replies)))

    def _run_all(self, subs: list[wire.Subrequest], all_or_none: bool, user: Caller) -> list[Reply]:
        if not all_or_none:
            return self._run(subs, False, user)
        replies: list[Reply] = []
        with self.records.service.unit():
            replies = self._run(subs, True, user)
            if any(r.status >= 400 for r in replies) or self.records.service.unit_failed():
                raise Rollback
        return replies

    def _run(self, subs: list[wire.Subrequest], all_or_none: bool, user: Caller) -> list[Reply]:
        """With allOrNone, the first failure stops the run: it keeps its own answer (a
        collection's is a 200 listing its records' errors), every other subrequest halts."""
        results: dict[str, Any] = {}
        replies: list[Reply] = []
        for n, sub in enumerate(subs):
            reply = self._one(sub, results, user)
            if all_or_none and (reply.status >= 400 or self.records.service.unit_failed()):
                halted = Reply(400, wire.halted())
                return [halted] * n + [reply] + [halted] * (len(subs) - n - 1)
            if reply.status < 400:
                results[sub.reference_id] = reply.body
            replies.append(reply)
        return replies

    def _one(self, sub: wire.Subrequest, results: dict[str, Any], user: Caller) -> Reply:
        try:
            url = resolve(sub.url, results)
            body = resolve(sub.body, results)
        except Unresolved as e:
            return Reply(400, wire.unresolved(e.ref, e.path, sub.reference_id))
        parts = urlsplit(url)
        path = re.sub("/+$", "", parts.path) or "/"
        headers = {k.lower(): v for k, v in sub.headers.items()}
        found = self.router.match(path) if path.lower().startswith("/services/data/") else None
        if found is None:
            return error_reply(ServiceError(Kind.NOT_FOUND, wire.UNSUPPORTED))
        route, params = found
        handlers = self.records.handlers(route.template)
        if handlers is not None and sub.method in handlers:
            query = dict(parse_qsl(parts.query))
            call = Call(sub.method, params, query, headers, body, user.principal.user_id)
            return run(handlers[sub.method], call)
        if sub.method != "GET" or "GET" not in route.methods:
            return error_reply(
                ServiceError(Kind.METHOD_NOT_ALLOWED, f"HTTP Method '{sub.method}' not allowed")
            )
        # a read through its own HTTP handler, on the event loop this thread was started from
        return from_thread.run(_get, route, params, path, parts.query, headers, user)


async def _get(
    route: Route, params: dict[str, str], path: str, query: str, headers: dict[str, str],
    user: Caller,
) -> Reply:  # fmt: skip
    """A GET subrequest answered by a route of the main router, as its own HTTP call would be."""
    host = [(k, v) for k, v in user.scope.get("headers", []) if k.lower() == b"host"]
    scope = {
        "type": "http", "method": "GET", "path": path, "query_string": query.encode(),
        "headers": host + [(k.encode("latin-1"), v.encode("latin-1"))
                           for k, v in headers.items() if k != "host"],
        "state": {"principal": user.principal}, "scheme": user.scope.get("scheme", "http"),
        "server": user.scope.get("server"), "root_path": "",
    }  # fmt: skip
    request = Request(scope)
    try:
        response = await route.methods["GET"](request, params)
    except ServiceError as e:
        response = route.api.error(request, e)
    if isinstance(response, StreamingResponse):
        data = b"".join(
            [c if isinstance(c, bytes) else str(c).encode() async for c in response.body_iterator]
        )
    else:
        data = bytes(response.body)
    try:
        payload = load_json(data) if data else None
    except DecodeError:
        payload = data.decode("utf-8", "replace")
    return Reply(response.status_code, payload)
