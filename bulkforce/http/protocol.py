"""The HTTP/1.1 connection, guarded against slow and oversized clients (issue #9, item 11).

uvicorn's httptools protocol accepts a request head of any size (a 128 MB header blocked the
event loop for 34 s while the parser grew it) and waits forever for a client that sends its
head, or its body, a byte at a time. This subclass counts the head's bytes before the parser
sees them (414 for a request line over the limit, 431 for the head), gives a client
`head_timeout` seconds from its first byte (or from connecting) to finish the head (408), and
closes a connection whose request body stalls for `body_timeout` seconds (the handler sees a
disconnect and discards the partial upload). Idle keep-alive connections are closed by
uvicorn's own `timeout_keep_alive`.

A stopping server drops a TLS connection a second after its last response: see `shutdown`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("bulkforce.http")

MAX_URL = 16 * 1024
MAX_HEAD = 64 * 1024

# How long a stopping server waits for a TLS client's close_notify before it drops the
# connection (asyncio's own wait is 30 s).
TLS_CLOSE_GRACE = 1.0

_REASONS = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


class GuardedProtocol(HttpToolsProtocol):
    head_timeout = 30.0
    body_timeout = 120.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True
        self._head_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._lost = False
        self._arm(self.head_timeout, self._head_expired)  # a client that never sends

    # ---- timers ------------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_expired(self) -> None:
        self._timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "The request head was not received in time")

    def _body_expired(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return
        if self.flow.read_paused:  # we are the slow side (the handler has not caught up)
            self._arm(self.body_timeout, self._body_expired)
            return
        log.warning("closing %s: request body stalled for %ss", self.client, self.body_timeout)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._disarm()
        super().connection_lost(exc)

    # ---- shutting down -----------------------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn's graceful stop: close once the response in hand is sent. Over TLS, asyncio's
        close then waits up to 30 s for the client's close_notify, which a client keeping an
        idle keep-alive connection (requests' pool, simple-salesforce's session) never sends:
        `serve --tls` took 30 s to stop after one such client. TLS does not require the closing
        side to wait for the reply (RFC 8446, 6.1), so after a second the connection is dropped."""
        super().shutdown()
        if self.transport.get_extra_info("ssl_object") is not None:
            self.loop.call_later(TLS_CLOSE_GRACE, self._drop_when_idle)

    def _drop_when_idle(self) -> None:
        if self._lost:
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:  # a response still going out (a long download): it finishes first
            self.loop.call_later(TLS_CLOSE_GRACE, self._drop_when_idle)

    # ---- counting the head -------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        log.warning("refused a request from %s: %s %s", self.client, status, message)
        body = json.dumps([{"errorCode": _REASONS[status].upper().replace(" ", "_"),
                            "message": message}]).encode()  # fmt: skip
        self.transport.write(
            f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self._disarm()
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        while data:
            if self.transport.is_closing():
                return
            if not self._in_head:
                if self.cycle is not None and self.cycle.more_body:
                    self._arm(self.body_timeout, self._body_expired)
                super().data_received(data)
                return
            room = MAX_HEAD - self._head_bytes
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
            if self._in_head and len(getattr(self, "url", b"")) > MAX_URL:
                self._refuse(414, f"The request line exceeds {MAX_URL} bytes")
                return
            if self._in_head and self._head_bytes >= MAX_HEAD:
                self._refuse(431, f"The request head exceeds {MAX_HEAD} bytes")
                return

    # ---- parser callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._arm(self.head_timeout, self._head_expired)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body:
            self._arm(self.body_timeout, self._body_expired)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        # what follows on this connection is the next request's head
        self._in_head = True
        self._head_bytes = 0


def guarded_protocol(head_timeout: float, body_timeout: float) -> type[GuardedProtocol]:
    """The protocol class for `uvicorn.run(http=...)` with these timeouts."""
    return type(
        "GuardedProtocol",
        (GuardedProtocol,),
        {"head_timeout": head_timeout, "body_timeout": body_timeout},
    )
