"""One line per request: client, method, path, status, milliseconds and the job it concerns.
Never a token: the query string (where OAuth clients may put credentials) is left out and no
header is logged."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("bulkforce.access")

# Bulk job ids (750…) in a path or at the start of a create response's body
_JOB_ID = re.compile(rb"750[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 0, "job": None}
        path: str = scope.get("path", "")
        found = _JOB_ID.search(path.encode("utf-8", "replace"))
        if found:
            state["job"] = found.group().decode()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and state["job"] is None:
                # a created job's id is in the first bytes of the answer
                head = bytes(message.get("body", b""))[:600]
                hit = _JOB_ID.search(head)
                if hit:
                    state["job"] = hit.group().decode()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = (time.perf_counter() - started) * 1000
            client = scope.get("client") or ("-", 0)
            job = f" job={state['job']}" if state["job"] else ""
            log.info(
                "%s %s %s %d %.0fms%s", client[0], scope.get("method", "-"), path,
                state["status"], ms, job,
            )  # fmt: skip
