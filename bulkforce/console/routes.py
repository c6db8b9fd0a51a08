"""The console's routes, mounted by the ASGI app in front of the APIs' catch-all."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bulkforce.auth.service import AuthService
from bulkforce.auth.throttle import LoginThrottle
from bulkforce.console.app import ConsoleBase
from bulkforce.console.jobs import JobPages
from bulkforce.console.objects import ObjectPages
from bulkforce.jobs.service import Context


def console_routes(
    ctx: Context, auth: AuthService, throttle: LoginThrottle, secure: bool
) -> list[BaseRoute]:
    base = ConsoleBase(ctx, auth, throttle, secure)
    return [*base.base_routes(), *JobPages(base).routes(), *ObjectPages(base).routes()]
