"""A small router: literal path segments match case-insensitively (clients disagree on
`unprocessedRecords` vs `unprocessedrecords`), one trailing slash is ignored, nothing redirects."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
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
    template: str
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    api: Api
    # answers without a token: the login endpoints and the version list
    public: bool = False


def compile_template(template: str) -> re.Pattern[str]:
    """`/a/{name}/b` → a case-insensitive pattern with a named group per `{name}`."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}$", re.IGNORECASE)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, template: str, api: Api, *, public: bool = False, **methods: Handler) -> None:
        """`template` like `/services/data/v{ver}/jobs/ingest/{job}`; methods by verb name.
        A template added again gains the new verbs (one resource, handlers in two modules)."""
        self.add_verbs(template, api, methods, public=public)

    def add_verbs(
        self, template: str, api: Api, methods: Mapping[str, Handler], *, public: bool = False
    ) -> None:
        verbs = {k.upper(): v for k, v in methods.items()}
        for route in self.routes:
            if route.template.lower() == template.lower():
                route.methods.update(verbs)
                return
        self.routes.append(Route(template, compile_template(template), verbs, api, public))

    def resources(self, root: str) -> list[str]:
        """The literal first segments of the routes below `root` (a template prefix such as
        `/services/data/v{ver}`): what the REST resource map may list."""
        prefix = root.lower() + "/"
        out: list[str] = []
        for route in self.routes:
            if route.template.lower().startswith(prefix):
                head = route.template[len(prefix) :].split("/", 1)[0]
                if head and "{" not in head and head not in out:
                    out.append(head)
        return out

    def exists(self, path: str) -> bool:
        """Whether some route answers `path` (what resource maps may advertise)."""
        return self.match(path) is not None

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
