"""API versions in URLs (spec §1.1): `NN.0` written in ASCII digits.

`[0-9]`, not `\\d`: Python's `\\d` also matches Arabic-Indic or fullwidth digits, which `int()`
then reads, so `/services/data/v٥٩.0` would pass for 59.0.
"""

from __future__ import annotations

import re

from bulkforce.errors import Kind, ServiceError

_VERSION = re.compile(r"([0-9]{2})\.0")
# Supported versions; everything below 31.0 is retired (Summer '25).
MIN_VERSION, MAX_VERSION = 31, 66
NOT_FOUND = "The requested resource does not exist"


def parse(raw: str) -> int | None:
    m = _VERSION.fullmatch(raw)
    return int(m[1]) if m else None


def rest_version(raw: str, minimum: int = MIN_VERSION) -> str:
    """A `/services/data/v{raw}` version. A retired one answers 410 as Salesforce's REST API
    does; a malformed or unknown one, or one older than the resource (`minimum`), 404."""
    n = parse(raw)
    if n is not None and n < MIN_VERSION:
        raise ServiceError(
            Kind.GONE, f"API version {n}.0 is retired: the requested resource no longer exists"
        )
    if n is None or not minimum <= n <= MAX_VERSION:
        raise ServiceError(Kind.NOT_FOUND, NOT_FOUND)
    return f"{n}.0"


def api_version(raw: str) -> str:
    """A Bulk 1.0 or SOAP version (`/services/async/{raw}`, `/services/Soap/u/{raw}`): those
    APIs answer a retired or unknown version alike (400 `InvalidVersion`,
    `UNSUPPORTED_API_VERSION`)."""
    n = parse(raw)
    if n is None or not MIN_VERSION <= n <= MAX_VERSION:
        raise ServiceError(Kind.INVALID_VERSION, f"Invalid API version: {raw}")
    return f"{n}.0"
