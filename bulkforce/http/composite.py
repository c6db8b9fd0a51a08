"""`POST composite`: up to 25 record subrequests in one call, later ones referring to earlier
results with `@{ref.id}` or `@{ref.records[0].Id}`.

Subrequests run in order in one worker thread through the same handlers as the HTTP calls
(http/records.py). With allOrNone they share one transaction: the first failure rolls
everything back and every other subrequest answers PROCESSING_HALTED.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulkforce.errors import Kind, ServiceError
from bulkforce.http import body as bodies
from bulkforce.http.auth import caller_id
from bulkforce.http.records import Call, RecordRoutes, Reply, error_reply, render, run
from bulkforce.http.rest import BASE, version_of
from bulkforce.http.routing import Router
from bulkforce.jobs.records import Rollback
from bulkforce.wire import composite as wire
from bulkforce.wire import records as wire_records

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


class CompositeRoutes:
    def __init__(self, records: RecordRoutes) -> None:
        self.records = records

    def error(self, request: Request, err: ServiceError) -> Response:
        return render(error_reply(err))

    def register(self, router: Router) -> None:
        router.add(BASE + "/composite", self, post=self.composite)

    async def composite(self, request: Request, params: dict[str, str]) -> Response:
        try:
            version_of(params)
            spec = wire_records.json_object(wire_records.parse_body(await bodies.read_all(request)))
            subs = wire.subrequests(spec, MAX_SUBREQUESTS)
        except ServiceError as e:
            return render(error_reply(e))
        all_or_none = spec.get("allOrNone") is True
        user = caller_id(request)
        replies = await run_in_threadpool(self._run_all, subs, all_or_none, user)
        return render(Reply(200, wire.composite_body(subs, replies)))

    def _run_all(self, subs: list[wire.Subrequest], all_or_none: bool, user: str) -> list[Reply]:
        if not all_or_none:
            return self._run(subs, False, user)
        replies: list[Reply] = []
        with self.records.service.unit():
            replies = self._run(subs, True, user)
            if any(r.status >= 400 for r in replies):
                raise Rollback
        return replies

    def _run(self, subs: list[wire.Subrequest], all_or_none: bool, user: str) -> list[Reply]:
        results: dict[str, Any] = {}
        replies: list[Reply] = []
        for sub in subs:
            if all_or_none and any(r.status >= 400 for r in replies):
                replies.append(Reply(400, wire.halted()))
                continue
            reply = self._one(sub, results, user)
            if reply.status < 400:
                results[sub.reference_id] = reply.body
            replies.append(reply)
        if all_or_none and any(r.status >= 400 for r in replies):
            replies = [r if r.status >= 400 else Reply(400, wire.halted()) for r in replies]
        return replies

    def _one(self, sub: wire.Subrequest, results: dict[str, Any], user: str) -> Reply:
        try:
            url = resolve(sub.url, results)
            body = resolve(sub.body, results)
        except Unresolved as e:
            return Reply(400, wire.unresolved(e.ref, e.path, sub.reference_id))
        parts = urlsplit(url)
        path = re.sub("/+$", "", parts.path) or "/"
        found = self.records.match(sub.method, path)
        if found is None:
            if self.records.match_any(path):
                return error_reply(
                    ServiceError(Kind.METHOD_NOT_ALLOWED, f"HTTP Method '{sub.method}' not allowed")
                )
            return error_reply(ServiceError(Kind.NOT_FOUND, wire.UNSUPPORTED))
        handler, params = found
        headers = {k.lower(): v for k, v in sub.headers.items()}
        call = Call(sub.method, params, dict(parse_qsl(parts.query)), headers, body, user)
        return run(handler, call)
