"""multipart/form-data for the Bulk 2.0 create-with-data request (spec §3.3).

Hand-written rather than python-multipart because Salesforce's own curl example frames the
parts with bare LF, which that library rejects; the body is small (≤ 100,000 characters of
CSV), so it is parsed whole.
"""

from __future__ import annotations

import re

_NAME = re.compile(rb'(?i)content-disposition:[^\n]*?\bname="?([^";\r\n]+)"?')


class MultipartError(ValueError):
    pass


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip().strip('"')
    raise MultipartError("the Content-Type has no boundary parameter")


def parse(body: bytes, boundary: str) -> dict[str, bytes]:
    """Part name → content. CRLF or LF line breaks; the line break before a delimiter
    belongs to the delimiter."""
    delimiter = b"--" + boundary.encode("latin-1")
    pieces = body.split(delimiter)
    if len(pieces) < 3:
        raise MultipartError("no parts found for the declared boundary")
    parts: dict[str, bytes] = {}
    closed = False
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            closed = True
            break
        piece = (
            piece.removeprefix(b"\r\n") if piece.startswith(b"\r\n") else piece.removeprefix(b"\n")
        )
        piece = (
            piece.removesuffix(b"\r\n") if piece.endswith(b"\r\n") else piece.removesuffix(b"\n")
        )
        crlf, lf = piece.find(b"\r\n\r\n"), piece.find(b"\n\n")
        if crlf == -1 and lf == -1:
            raise MultipartError("a part has no blank line between its headers and content")
        if crlf != -1 and (lf == -1 or crlf < lf):
            head, content = piece[:crlf], piece[crlf + 4 :]
        else:
            head, content = piece[:lf], piece[lf + 2 :]
        m = _NAME.search(head)
        if m is None:
            raise MultipartError("a part has no Content-Disposition name")
        parts[m.group(1).decode("latin-1")] = content
    if not closed:
        raise MultipartError("the closing boundary is missing")
    return parts
