"""OAuth 2.0 token endpoint and identity JSON shapes (spec §8.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from bulkforce.errors import Kind

# (error, error_description) per domain error kind; simple-salesforce reads exactly these keys.
ERRORS: dict[Kind, tuple[str, str]] = {
    Kind.INVALID_LOGIN: ("invalid_grant", "authentication failure"),
    Kind.INVALID_CLIENT_ID: ("invalid_client_id", "client identifier invalid"),
    Kind.INVALID_CLIENT: ("invalid_client", "invalid client credentials"),
    Kind.INVALID_GRANT: ("invalid_grant", "expired access/refresh token"),
    Kind.UNSUPPORTED_GRANT: ("unsupported_grant_type", "grant type not supported"),
}


def error_body(kind: Kind, message: str) -> dict[str, str]:
    """The documented description where there is one; our message for the rest."""
    error, description = ERRORS.get(kind, ("invalid_request", message))
    if kind is Kind.INVALID_GRANT:
        description = message
    return {"error": error, "error_description": description}


def identity_url(base: str, org_id: str, user_id: str) -> str:
    return f"{base}/id/{org_id}/{user_id}"


def token_response(
    base: str, org_id: str, user_id: str, access_token: str, issued_at_ms: int, key: bytes
) -> dict[str, Any]:
    ident = identity_url(base, org_id, user_id)
    issued = str(issued_at_ms)
    # Salesforce signs id + issued_at with HMAC-SHA256 keyed by the consumer secret.
    signature = base64.b64encode(
        hmac.new(key, (ident + issued).encode(), hashlib.sha256).digest()
    ).decode()
    return {
        "access_token": access_token,
        "instance_url": base,
        "id": ident,
        "token_type": "Bearer",
        "issued_at": issued,
        "signature": signature,
        "scope": "api",
    }


def userinfo(
    base: str, org_id: str, user_id: str, username: str, email: str, full_name: str,
    version: str,
) -> dict[str, Any]:  # fmt: skip
    """The OpenID Connect userinfo document (also served at the identity URL)."""
    given, _, family = full_name.rpartition(" ")
    v = f"{base}/services/data/v{version}"
    return {
        "sub": identity_url(base, org_id, user_id),
        "user_id": user_id,
        "organization_id": org_id,
        "preferred_username": username,
        "nickname": username.split("@", 1)[0],
        "name": full_name,
        "email": email,
        "email_verified": True,
        "given_name": given or None,
        "family_name": family,
        "zoneinfo": "America/Los_Angeles",
        "locale": "en_US",
        "language": "en_US",
        "active": True,
        "user_type": "STANDARD",
        "utcOffset": -28800000,
        "updated_at": None,
        "is_app_installed": True,
        "urls": {
            "enterprise": f"{base}/services/Soap/c/{version}/{org_id[:15]}",
            "partner": f"{base}/services/Soap/u/{version}/{org_id[:15]}",
            "rest": f"{v}/",
            "sobjects": f"{v}/sobjects/",
            "query": f"{v}/query/",
            "limits": f"{v}/limits/",
            "profile": f"{base}/{user_id}",
        },
    }
