"""REST resources clients call around bulk loads: describeGlobal, describe, one record, limits,
and bulkforce's own admin reset. Parse, call the org service, render."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulkforce.errors import Kind, ServiceError
from bulkforce.http import body
from bulkforce.http.auth import caller_of
from bulkforce.http.bulk2 import json_response
from bulkforce.http.routing import Router
from bulkforce.http.versions import rest_version
from bulkforce.jobs.access import require_admin
from bulkforce.jobs.org import OrgService
from bulkforce.wire import rest

BASE = "/services/data/v{ver}"
ADMIN_RESET = "/bulkforce/admin/reset"


def version_of(params: dict[str, str]) -> str:
    return rest_version(params["ver"])


class RestRoutes:
    def __init__(self, service: OrgService) -> None:
        self.service = service

    def error(self, request: Request, err: ServiceError) -> Response:
        status, payload = rest.error_body(err.kind, err.message, err.code)
        return json_response(payload, status)

    def register(self, router: Router) -> None:
        router.add(BASE + "/sobjects", self, get=self.describe_global)
        router.add(BASE + "/sobjects/{sobject}", self, get=self.metadata)
        router.add(BASE + "/sobjects/{sobject}/describe", self, get=self.describe)
        router.add(BASE + "/limits", self, get=self.limits)
        router.add(ADMIN_RESET, self, post=self.reset)

    async def describe_global(self, request: Request, params: dict[str, str]) -> Response:
        ver = version_of(params)
        return json_response(rest.describe_global(self.service.sobjects(), ver))

    async def metadata(self, request: Request, params: dict[str, str]) -> Response:
        ver = version_of(params)
        return json_response(rest.metadata(self.service.sobject(params["sobject"]), ver))

    async def describe(self, request: Request, params: dict[str, str]) -> Response:
        ver = version_of(params)
        obj = self.service.sobject(params["sobject"])
        return json_response(rest.describe(obj, self.service.children(obj), ver))

    async def limits(self, request: Request, params: dict[str, str]) -> Response:
        version_of(params)
        usage = await run_in_threadpool(self.service.usage)
        used = {
            "DailyBulkApiBatches": usage.get("bulk_batches", 0),
            "DailyBulkV2QueryJobs": usage.get("jobs:V2Query", 0),
        }
        return json_response(rest.limits(used))

    async def reset(self, request: Request, params: dict[str, str]) -> Response:
        """`POST /bulkforce/admin/reset` with `{"object": "Contact"}` for one object, or an
        empty body for all of them. Admins only; checked before the body is read."""
        require_admin(caller_of(request), "reset the org's records")
        # read through the 1 MB limit: `request.body()` would hold any size whole first
        data = await body.read_all(request)
        spec = body.parse_json(data) if data else {}
        if not isinstance(spec, dict):
            raise ServiceError(Kind.JSON_PARSE, "The body must be a JSON object")
        name = spec.get("object")
        if name is not None and not isinstance(name, str):
            raise ServiceError(Kind.JSON_PARSE, "'object' must be an object name")
        deleted = await run_in_threadpool(self.service.reset, name or None)
        return json_response({"deleted": deleted})
