"""A small router: literal path segments match case-insensitively (clients disagree on
`unprocessedRecords` vs `unprocessedrecords`), one trailing slash is ignored, nothing redirects."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from bulkforce.errors import ServiceError

Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]


class Api(Protocol):
    """One wire front (Bulk 1.0 or 2.0): it renders its own errors."""

    def error(self, request: Request, err: ServiceError) -> Response: ...


@dataclass
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    api: Api
    # answers without a token: the login endpoints and the version list
    public: bool = False


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, template: str, api: Api, *, public: bool = False, **methods: Handler) -> None:
        """`template` like `/services/data/v{ver}/jobs/ingest/{job}`; methods by verb name."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        pattern = re.compile(f"^{regex}$", re.IGNORECASE)
        verbs = {k.upper(): v for k, v in methods.items()}
        self.routes.append(Route(pattern, verbs, api, public))

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        # jsforce joins an instance URL that ends in "/" into "//services/async/…"; inner
        # empty segments stay unmatched (404)
        path = re.sub("^/{2,}", "/", path)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
                return route, m.groupdict()
        return None
