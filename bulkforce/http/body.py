"""Request bodies: streamed, gunzipped when `Content-Encoding: gzip` (spec §1.3), bounded."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.requests import Request

from bulkforce.errors import Kind, ServiceError
from bulkforce.wire.decode import DecodeError, load_json

JSON_BODY_LIMIT = 1024 * 1024


def media_type(request: Request) -> str:
    """The bare media type, lower-cased, parameters dropped (spec §1.4)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def plain_size(request: Request) -> float:
    """The body's size in bytes when the request states it and sends it uncompressed, else
    infinity."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    length = request.headers.get("content-length", "")
    if encoding not in ("", "identity") or not length.isdigit():
        return float("inf")
    return int(length)


async def stream(request: Request) -> AsyncIterator[bytes]:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        async for chunk in request.stream():
            if chunk:
                yield chunk
        return
    if encoding not in ("gzip", "x-gzip"):
        raise ServiceError(
            Kind.UNSUPPORTED_MEDIA, f"Content-Encoding '{encoding}' is not supported"
        )
    inflater = Gunzip()
    try:
        async for chunk in request.stream():
            for data in inflater.feed(chunk):
                yield data
        inflater.finish()
    except zlib.error as e:
        raise ServiceError(
            Kind.CLIENT_INPUT, f"Unable to decompress the gzip request body: {e}"
        ) from None


class Gunzip:
    """Streaming gunzip of every member (RFC 1952 §2.2: a gzip file is a series of members,
    and `cat a.gz b.gz` is valid). Bytes after a member that do not start another member
    are an error: they are data the client meant to send and we could not read."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        while chunk:
            if self._inflater.eof:  # a member ended: only another member may follow
                if not b"\x1f\x8b".startswith(chunk[:2]):
                    raise ServiceError(
                        Kind.CLIENT_INPUT,
                        "Unable to decompress the gzip request body: "
                        "unexpected data after the end of the compressed stream",
                    )
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            # bounded output per step so a small "gzip bomb" cannot balloon in memory
            data = self._inflater.decompress(chunk, 1 << 20)
            while True:
                if data:
                    yield data
                if not self._inflater.unconsumed_tail:
                    break
                data = self._inflater.decompress(self._inflater.unconsumed_tail, 1 << 20)
            chunk = self._inflater.unused_data if self._inflater.eof else b""

    def finish(self) -> None:
        if not self._inflater.eof:
            raise ServiceError(Kind.CLIENT_INPUT, "The gzip request body is truncated")


async def read_all(request: Request, limit: int = JSON_BODY_LIMIT) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in stream(request):
        size += len(chunk)
        if size > limit:
            raise ServiceError(
                Kind.INVALID_JOB, f"The request body exceeds the limit of {limit} bytes"
            )
        parts.append(chunk)
    return b"".join(parts)


def parse_json(data: bytes) -> Any:
    try:
        return load_json(data)
    except DecodeError as e:
        raise ServiceError(Kind.JSON_PARSE, f"Unexpected character in the JSON body: {e}") from None


async def read_json(request: Request) -> Any:
    return parse_json(await read_all(request))
