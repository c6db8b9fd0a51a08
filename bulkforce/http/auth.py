"""Access tokens: `Authorization: Bearer|OAuth <token>` (2.0) or `X-SFDC-Session` (1.0)."""

from __future__ import annotations

import hmac

from starlette.requests import Request


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


def token_ok(request: Request, expected: str) -> bool:
    token = presented_token(request)
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())
