"""Access tokens: `Authorization: Bearer|OAuth <token>` (2.0) or `X-SFDC-Session` (1.0)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bulkforce.auth.service import AuthService, Principal
from bulkforce.jobs.access import Caller


def presented_token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            return value.strip()
        return None
    session = request.headers.get("x-sfdc-session")  # headers are case-insensitive
    if session:
        return session.strip().removeprefix("Bearer ").strip()
    return None


async def authenticate(request: Request, auth: AuthService) -> Principal | None:
    """The caller behind the request's token, or None when it is missing, wrong or expired."""
    token = presented_token(request)
    if token is None:
        return None
    principal = auth.fixed(token)  # the fixed CI token costs no database read
    if principal is not None:
        return principal
    return await run_in_threadpool(auth.authenticate, token)


def principal_of(request: Request) -> Principal:
    """The caller that `dispatch` authenticated for this request."""
    principal: Principal = request.state.principal
    return principal


def caller_of(request: Request) -> Caller:
    """The authenticated user with the permissions the job services check."""
    p = principal_of(request)
    return Caller(p.user_id, p.is_admin, p.manage_data_integrations)


def caller_id(request: Request) -> str:
    """The authenticated user's id: createdById of what the request creates."""
    return principal_of(request).user_id
