"""A handful of records applied synchronously, through the same plan and chunk code as a bulk
job, so a record written by a REST call is stored (and fails) exactly as a bulk row would.

Each record is a mapping from header names (field names, or relationship columns such as
`Account.External_Id__c`) to cell text in the bulk CSV convention: "" leaves the field
unset, `#N/A` sets it to null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bulkforce.engine.dml import apply_chunk
from bulkforce.engine.errors import RecordError
from bulkforce.engine.plan import make_plan
from bulkforce.engine.schema import Schema, SObject
from bulkforce.model import Operation
from bulkforce.store import Tx


@dataclass(frozen=True)
class RecordWrite:
    obj: SObject
    operation: Operation
    cells: Mapping[str, str]
    ext_field: str | None = None  # upsert key


@dataclass(frozen=True)
class WriteResult:
    id: str  # "" when the record got none
    created: bool
    error: RecordError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _runs(writes: Sequence[RecordWrite]) -> list[list[RecordWrite]]:
    """Consecutive records of one object, operation and key: Salesforce processes a mixed
    list in such chunks, in order."""
    runs: list[list[RecordWrite]] = []
    for w in writes:
        last = runs[-1][0] if runs else None
        if (
            last is not None
            and last.obj.name == w.obj.name
            and last.operation is w.operation
            and last.ext_field == w.ext_field
        ):
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs


def apply_writes(
    schema: Schema, tx: Tx, writes: Sequence[RecordWrite], user_id: str, now: str
) -> list[WriteResult]:
    """Apply `writes` in order inside the caller's transaction; one result per record.

    A record's failure writes nothing of it; whether the others stay is the caller's choice
    (commit, or roll the transaction back for all-or-none)."""
    out: list[WriteResult] = []
    for run in _runs(writes):
        first = run[0]
        header: list[str] = []
        if first.operation in (Operation.UPDATE, Operation.DELETE, Operation.HARD_DELETE):
            header.append("Id")
        seen = {h.lower() for h in header}
        for w in run:
            for name in w.cells:
                if name.lower() not in seen:
                    seen.add(name.lower())
                    header.append(name)
        rows = [[w.cells.get(h, "") for h in header] for w in run]
        plan = make_plan(schema, first.obj, first.operation, header, first.ext_field)
        outcome = apply_chunk(schema, plan, tx, rows, user_id, now)
        out.extend(
            WriteResult(rid, created, err)
            for rid, created, err in zip(outcome.ids, outcome.created, outcome.errors, strict=True)
        )
    return out
