"""The ASGI application: one router, token check, and Salesforce-shaped errors for everything."""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bulkforce.auth.service import AuthService, AuthSettings
from bulkforce.auth.throttle import LoginThrottle
from bulkforce.console.routes import console_routes
from bulkforce.errors import Kind, ServiceError
from bulkforce.http.accesslog import AccessLog
from bulkforce.http.auth import authenticate
from bulkforce.http.bulk1 import Bulk1Routes
from bulkforce.http.bulk2 import Bulk2Routes, error_response
from bulkforce.http.composite import CompositeRoutes
from bulkforce.http.login import OAuthRoutes, SoapRoutes, VersionRoutes
from bulkforce.http.query import QueryJobRoutes, RestQueryRoutes
from bulkforce.http.records import RecordRoutes
from bulkforce.http.rest import RestRoutes
from bulkforce.http.routing import Api, Router
from bulkforce.jobs.classic import ClassicService
from bulkforce.jobs.org import OrgService
from bulkforce.jobs.query import QueryJobService
from bulkforce.jobs.records import RecordService
from bulkforce.jobs.rest_query import RestQueryService
from bulkforce.jobs.service import Context, IngestService
from bulkforce.store.base import StoreError
from bulkforce.worker import Worker

log = logging.getLogger("bulkforce.http")

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# A write to a read-only resource: say where writes go
WRITE_HINT = (
    ". This resource is read-only here; load records with Bulk API 2.0 "
    "(POST /services/data/vXX.X/jobs/ingest) or Bulk API 1.0 (POST /services/async/XX.X/job)"
)


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


async def last_resort(request: Request, exc: Exception) -> Response:
    """Whatever escapes `dispatch` (an error while rendering an error): still a Salesforce-shaped
    body, never Starlette's plain-text 500. uvicorn logs the exception once. Once a response has
    started (a streamed download), no handler runs: the connection is aborted instead, so the
    client never mistakes a cut-off body for a complete one."""
    return error_response(ServiceError(Kind.UNKNOWN, "An unexpected error occurred"))


class Background(Protocol):
    """Something the server runs beside itself for as long as it serves (its worker process)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class _Asgi:
    """Starlette treats a plain function as a request/response endpoint limited to GET; an
    object is taken as a raw ASGI app, which sees every method."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_app(
    ctx: Context, admin_digest: str, workers: int = 1, auth_settings: AuthSettings | None = None,
    tls: bool = False, background: Sequence[Background] = (),
) -> Starlette:  # fmt: skip
    """`admin_digest`: the SHA-256 (hex) of the admin access token; `tls`: served over https
    (the console's cookie is then Secure); `background`: started with the app, stopped at its
    shutdown (uvicorn ends the process by re-raising SIGTERM once the app has shut down, so
    this is where anything that must stop in order is stopped)."""
    router = Router()
    org = ctx.settings.org_id
    auth = AuthService(
        ctx.store, org, ctx.settings.user_id, admin_digest, auth_settings or AuthSettings()
    )
    throttle = LoginThrottle(auth.settings.throttle)
    OAuthRoutes(auth, org, throttle).register(router)
    SoapRoutes(auth, org, ctx.store.get_meta("org_name") or "Bulkforce", throttle).register(router)
    VersionRoutes(org).register(router)
    bulk2 = Bulk2Routes(IngestService(ctx))
    bulk2.register(router)
    bulk1 = Bulk1Routes(ClassicService(ctx))
    bulk1.register(router)
    org_service = OrgService(ctx)
    RestRoutes(org_service).register(router)
    record_routes = RecordRoutes(RecordService(ctx), org_service)
    record_routes.register(router)
    CompositeRoutes(record_routes, router).register(router)
    RestQueryRoutes(RestQueryService(ctx)).register(router)
    QueryJobRoutes(QueryJobService(ctx)).register(router)

    def api_for(path: str) -> Api:
        return bulk1 if path.lower().startswith("/services/async/") else bulk2

    async def dispatch(request: Request) -> Response:
        path = request.url.path
        found = router.match(path)
        api = found[0].api if found else api_for(path)
        try:
            if found is None or not found[0].public:
                request.state.principal = await authenticate(request, auth)
                if request.state.principal is None:
                    message = "Invalid session id" if api is bulk1 else "Session expired or invalid"
                    raise ServiceError(Kind.INVALID_SESSION, message)
            if found is None:
                raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
            route, params = found
            handler = route.methods.get(request.method)
            if handler is None:
                message = f"HTTP Method '{request.method}' not allowed. Allowed are {','.join(route.methods)}"
                if request.method in _WRITES and not _WRITES & route.methods.keys():
                    message += WRITE_HINT
                raise ServiceError(Kind.METHOD_NOT_ALLOWED, message)
            return await handler(request, params)
        except ServiceError as e:
            return api.error(request, e)
        except StoreError as e:
            # a database fault, not the client's: 503 says "try again later"
            log.error("store error on %s %s: %s", request.method, path, e)
            err = ServiceError(
                Kind.UNAVAILABLE, "A database error occurred; the request was not applied"
            )
            return api.error(request, err)
        except OSError as e:
            if e.errno not in _DISK_FULL:
                log.exception("unexpected error on %s %s", request.method, path)
                return api.error(
                    request, ServiceError(Kind.UNKNOWN, "An unexpected error occurred")
                )
            log.error("disk full on %s %s: %s", request.method, path, e)
            err = ServiceError(
                Kind.UNAVAILABLE, "The server is out of disk space; the request was not applied"
            )
            return api.error(request, err)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, path)
            return api.error(request, ServiceError(Kind.UNKNOWN, "An unexpected error occurred"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running: list[tuple[Worker, threading.Thread]] = []
        for n in range(workers):
            w = Worker(ctx)
            t = threading.Thread(target=w.run_forever, name=f"bulkforce-worker-{n}", daemon=True)
            t.start()
            running.append((w, t))
        for b in background:
            b.start()
        yield
        for b in background:
            b.stop()
        for w, _ in running:
            w.stopping.set()
        ctx.wake.wake_all()
        for _, t in running:
            t.join(timeout=30)
        throttle.close()

    async def every_method(scope: Scope, receive: Receive, send: Send) -> None:
        response = await dispatch(Request(scope, receive))
        await response(scope, receive, send)

    # A plain ASGI endpoint takes every method, so PROPFIND, TRACE and the like reach `dispatch`
    # and get the API's own 405 (a function endpoint would get Starlette's plain-text one).
    # The console's pages come first; everything else is the APIs'.
    app = Starlette(
        routes=[
            *console_routes(ctx, auth, throttle, secure=tls),
            Route("/{path:path}", _Asgi(every_method)),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: last_resort},
        middleware=[Middleware(AccessLog)],
    )
    app.state.router = router  # what answers without a token is checked route by route
    return app
