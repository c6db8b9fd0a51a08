"""What a chunk's DML produces: each row's outcome, and the rows an insert writes."""

from __future__ import annotations

from dataclasses import dataclass

from bulkforce.engine.errors import RecordError
from bulkforce.store.base import ColumnRows


@dataclass
class Outcome:
    """Per row of the chunk: the record id ("" if none), created flag, and error if failed."""

    ids: list[str]
    created: list[bool]
    errors: list[RecordError | None]


@dataclass
class InsertRows:
    """What an insert writes: its columns, the rows of the records that passed the checks
    (`good`, by index in the chunk) and the values the same in every row."""

    columns: list[str]
    rows: ColumnRows
    good: list[int]
    constants: dict[str, object]
