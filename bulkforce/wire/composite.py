"""Composite request and response bodies (`POST composite`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bulkforce.errors import Kind, ServiceError

_REFERENCE_ID = re.compile(r"[A-Za-z0-9_]+")
_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE", "HEAD")
UNSUPPORTED = "The requested resource does not exist"


@dataclass
class Subrequest:
    method: str
    url: str
    reference_id: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class SubReply(Protocol):
    status: int
    body: Any
    headers: dict[str, str]


def _bad(message: str) -> ServiceError:
    return ServiceError(Kind.JSON_PARSE, message)


def subrequests(spec: dict[str, Any], limit: int) -> list[Subrequest]:
    raw = spec.get("compositeRequest")
    if not isinstance(raw, list) or not raw:
        raise _bad("compositeRequest must be a non-empty list of subrequests")
    if len(raw) > limit:
        raise ServiceError(
            Kind.LIMIT_EXCEEDED,
            f"Received invalid request: a composite request may hold at most {limit} "
            f"subrequests; it has {len(raw)}",
        )
    for key in ("allOrNone", "collateSubrequests"):
        if key in spec and not isinstance(spec[key], bool):
            raise _bad(f"{key} must be true or false")
    out: list[Subrequest] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise _bad("Each subrequest must be a JSON object")
        method, url, ref = item.get("method"), item.get("url"), item.get("referenceId")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise _bad(f"Invalid HTTP method of a subrequest: {method!r}")
        if not isinstance(url, str) or not url.startswith("/services/data/"):
            raise _bad(f"The url of a subrequest must start with /services/data/: {url!r}")
        if not isinstance(ref, str) or not _REFERENCE_ID.fullmatch(ref):
            raise _bad(
                f"Invalid referenceId {ref!r}: use letters, digits and underscores, and start "
                "with a letter"
            )
        if ref.lower() in seen:
            raise ServiceError(Kind.INVALID_INPUT, f"Duplicate referenceId provided: {ref}")
        seen.add(ref.lower())
        headers = item.get("httpHeaders") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _bad("httpHeaders must map header names to strings")
        out.append(Subrequest(method.upper(), url, ref, item.get("body"), dict(headers)))
    return out


def halted() -> list[dict[str, str]]:
    """What every other subrequest answers when an allOrNone composite rolls back."""
    return [
        {
            "errorCode": "PROCESSING_HALTED",
            "message": "The transaction was rolled back since another operation in the same "
            "transaction failed.",
        }
    ]


def unresolved(ref: str, path: str, own: str) -> list[dict[str, str]]:
    """A reference to a subrequest that failed, has not run, or has no such value."""
    return [
        {
            "errorCode": "PROCESSING_HALTED",
            "message": f"Invalid reference specified. No value for {ref}{path} found in {ref}. "
            f"Provided referenceId ('{ref}') does not match any prior subrequest result "
            f"used by {own}.",
        }
    ]


def composite_body(subs: Sequence[Subrequest], replies: Sequence[SubReply]) -> dict[str, Any]:
    return {
        "compositeResponse": [
            {
                "body": reply.body,
                "httpHeaders": reply.headers,
                "httpStatusCode": reply.status,
                "referenceId": sub.reference_id,
            }
            for sub, reply in zip(subs, replies, strict=True)
        ]
    }
