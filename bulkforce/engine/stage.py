"""An insert chunk made ready ahead of its transaction, outside it.

The worker's prefetch thread runs the checks of the next chunk, allocates its Ids and has the
store encode its rows (PostgreSQL: the binary COPY data) while the writer's connection still
copies the current one; ChunkRun.run then only sends them. Measured on a 1M-row PostgreSQL
insert, five alternating runs each: 21.8k -> 23.3k rec/s (medians).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulkforce.engine.dml import ChunkRun
from bulkforce.engine.outcome import InsertRows, Outcome
from bulkforce.engine.plan import Plan
from bulkforce.engine.prepare import Prepared
from bulkforce.engine.schema import Schema, SObject
from bulkforce.model import Operation

# Store.encode_insert: an insert's rows as the store's write sends them (None: as they are)
Encode = Callable[[SObject, Sequence[str], Iterable[Sequence[Any]], Mapping[str, Any]], object]


@dataclass
class StagedInsert:
    """An insert chunk made ready ahead of its transaction (stage_insert): the rows to write
    (None if no record passed the checks), the store's encoding of them, and every row's
    outcome should the write succeed. `results`: what the caller made of that outcome
    ahead (the worker: the success result lines), valid while no record fails."""

    rows: InsertRows | None
    encoded: object
    outcome: Outcome
    results: bytes | None = None


def stage_insert(
    schema: Schema, plan: Plan, prepared: Prepared, user_id: str, now: str,
    allocate: Callable[[str, int], int], encode: Encode,
) -> StagedInsert | None:  # fmt: skip
    """An insert chunk's checks, new Ids and rows, ahead of its transaction and outside it
    (the worker's prefetch thread; ChunkRun.run then only writes them). Only a chunk whose
    checks read no records can be: not one with a `Rel.Field` column or a reference
    value, whose targets are looked up in the transaction (None then: it runs as usual).
    `now` stamps the records: the time they are staged, not written (a batch or two
    before, as each batch's records always had one time for all of them). Ids allocated
    for a chunk that is never written are a gap, as after a rollback."""
    if plan.operation is not Operation.INSERT or plan.lookups:
        return None
    for j, f in enumerate(plan.fields):
        if f.type == "reference" and any(prepared.values.get(j, ())):
            return None
    run = ChunkRun(schema, plan, None, prepared, user_id, now, allocate)
    run._finish_columns()
    rows = run.insert_rows(range(run.n))
    encoded = None if rows is None else encode(plan.obj, rows.columns, rows.rows, rows.constants)
    return StagedInsert(rows, encoded, run.outcome())
