"""The ASGI application: one router, token check, and Salesforce-shaped errors for everything."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkforce.errors import Kind, ServiceError
from bulkforce.http.auth import token_ok
from bulkforce.http.bulk2 import Bulk2Routes, error_response
from bulkforce.http.routing import Router
from bulkforce.jobs.service import Context, IngestService
from bulkforce.store.base import StoreError
from bulkforce.worker import Worker

log = logging.getLogger("bulkforce.http")


def create_app(ctx: Context, token: str, workers: int = 1) -> Starlette:
    router = Router()
    Bulk2Routes(IngestService(ctx)).register(router)

    async def dispatch(request: Request) -> Response:
        try:
            found = router.match(request.url.path)
            if found is None:
                raise ServiceError(Kind.NOT_FOUND, "The requested resource does not exist")
            if not token_ok(request, token):
                raise ServiceError(Kind.INVALID_SESSION, "Session expired or invalid")
            route, params = found
            handler = route.methods.get(request.method)
            if handler is None:
                allowed = ",".join(route.methods)
                raise ServiceError(
                    Kind.METHOD_NOT_ALLOWED,
                    f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}",
                )
            return await handler(request, params)
        except ServiceError as e:
            return error_response(e)
        except StoreError:
            log.exception("store error on %s %s", request.method, request.url.path)
            return error_response(
                ServiceError(Kind.UNKNOWN, "A database error occurred; the request was not applied")
            )
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return error_response(ServiceError(Kind.UNKNOWN, "An unexpected error occurred"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running: list[tuple[Worker, threading.Thread]] = []
        for n in range(workers):
            w = Worker(ctx)
            t = threading.Thread(target=w.run_forever, name=f"bulkforce-worker-{n}", daemon=True)
            t.start()
            running.append((w, t))
        yield
        for w, _ in running:
            w.stopping.set()
        ctx.wake.set()
        for _, t in running:
            t.join(timeout=30)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", dispatch, methods=methods)], lifespan=lifespan)
