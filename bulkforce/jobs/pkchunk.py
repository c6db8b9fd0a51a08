"""Bulk 1.0 PK chunking (spec bulk-api.md §2.10, query.md §5.1): the `Sforce-Enable-PKChunking`
header and the Id ranges a query is cut into.

Ranges step by `chunk_size` in Id number space (the 15-char Id body as a base-62 number), not
by row count, from the first Id of the table (soft-deleted rows included) or `startRow`; gaps
left by deleted rows make chunks return fewer rows, never the same row twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from bulkforce.engine import ids
from bulkforce.errors import Kind, ServiceError

HEADER = "Sforce-Enable-PKChunking"
DEFAULT_CHUNK_SIZE = 100_000
MAX_CHUNK_SIZE = 250_000

# The standard objects the Bulk API guide lists as supporting PK chunking; every custom
# object does too, and a sharing/history object does through `parent=` (spec §2.10).
SUPPORTED = frozenset({
    "Account", "Asset", "Campaign", "CampaignMember", "Case", "CaseArticle", "CaseHistory",
    "Contact", "Event", "EventRelation", "Lead", "LeadHistory", "LoginHistory", "Opportunity",
    "OpportunityHistory", "OpportunityLineItem", "Task", "TaskRelation", "User", "UserRole",
    "WorkOrder", "WorkOrderLineItem",
})  # fmt: skip


@dataclass(frozen=True)
class PkChunking:
    chunk_size: int = DEFAULT_CHUNK_SIZE
    parent: str | None = None
    start_row: str | None = None  # 15-char Id body

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str | None) -> PkChunking | None:
        return None if not text else cls(**json.loads(text))


def _bad(message: str) -> ServiceError:
    return ServiceError(Kind.INVALID_JOB, f"Invalid {HEADER} header: {message}")


def parse_header(value: str | None) -> PkChunking | None:
    """`true`, `TRUE`, `false`, `chunkSize=N`, `chunkSize=N;`, `true; chunkSize=N; parent=X`,
    `chunkSize=N;parent=X`, `startRow=<15/18-char Id>`: items separated by `;` with optional
    spaces. None when the header is absent or false."""
    if value is None or not value.strip():
        return None
    enabled: bool | None = None
    options: dict[str, str] = {}
    for raw in value.split(";"):
        item = raw.strip()
        if not item:
            continue
        key, eq, val = item.partition("=")
        key, val = key.strip(), val.strip()
        if not eq:
            if key.lower() not in ("true", "false"):
                raise _bad(f"unknown option {item!r} (expected true, false, chunkSize=N, "
                           "parent=Object or startRow=Id)")  # fmt: skip
            enabled = key.lower() == "true"
            continue
        canonical = {"chunksize": "chunkSize", "parent": "parent", "startrow": "startRow"}
        name = canonical.get(key.lower())
        if name is None:
            raise _bad(f"unknown option {key!r} (expected chunkSize, parent or startRow)")
        if not val:
            raise _bad(f"{name} needs a value")
        options[name] = val
    if enabled is False:
        return None
    size = DEFAULT_CHUNK_SIZE
    if "chunkSize" in options:
        text = options["chunkSize"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_CHUNK_SIZE:
            raise _bad(f"chunkSize {text} is not a whole number from 1 to {MAX_CHUNK_SIZE}")
        size = int(text)
    start = None
    if "startRow" in options:
        text = options["startRow"]
        # only the 15-char body counts: a mistyped checksum suffix does not move the start
        if len(text) not in (15, 18) or not all(c in ids.BASE62 for c in text):
            raise _bad(f"startRow {text} is not a valid 15- or 18-character Id")
        start = text[:15]
    return PkChunking(size, options.get("parent"), start)


def ranges(first: str, last: str, size: int) -> Iterator[tuple[str, str]]:
    """[lo, hi) pairs of 15-char Ids stepping by `size` from `first` until `last` is covered;
    at least one range even when `last` comes before `first`."""
    lo, end = ids.number(first), ids.number(last)
    top = ids.ID15_SPACE - 1
    while True:
        hi = min(lo + size, top)
        yield ids.from_number(lo), ids.from_number(hi)
        if hi > end or hi >= top:
            return
        lo = hi


def range_condition(field: str, lo: str, hi: str) -> str:
    """The Id-range condition a chunk's SOQL gets (the doc prints the Ids unquoted; as SOQL an
    Id literal must be quoted)."""
    return f"{field} >= '{lo}' AND {field} < '{hi}'"
