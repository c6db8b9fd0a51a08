"""Writing a chunk's rows so that a row the database refuses fails alone.

The happy path is one statement for all the rows. When a unique index refuses it, the
records that clash for sure fail at once and the rest go in again together (engine.unique);
the records that may clash with each other are written one by one in file order, by the
store itself where it has a faster way (RecordTable.write_each), else each in a savepoint.
When the database refuses a value (BadValue), every row is written alone, each in a
savepoint, to find which.
"""

from __future__ import annotations

from collections.abc import Sequence

from bulkforce.engine.errors import RecordError
from bulkforce.engine.schema import SObject
from bulkforce.engine.unique import duplicate_value, split_refused
from bulkforce.store import Tx
from bulkforce.store.base import BadValue, RecordTable, UniqueViolation

# Fewer records than this left to write one by one are cheaper in RowWrites.write's own
# loop than in the store's (RecordTable.write_each). On PostgreSQL the store's costs ~12 ms
# (temporary tables, the block) and ~0.1 ms a record, the savepoint loop ~1.6 ms a record:
# 8 records took 14 ms either way, 4 took 14 against 8 ms, 16 took 16 against 28 ms.
EACH_MIN_ROWS = 10

Rows = Sequence[tuple[object, ...]]
Failed = dict[int, RecordError]


class RowWrites:
    """The writes of one chunk's rows into `table`, in the caller's transaction."""

    def __init__(self, tx: Tx, table: RecordTable, obj: SObject) -> None:
        self.tx, self.table, self.obj = tx, table, obj

    def write(
        self, columns: Sequence[str], rows: Rows, insert: bool, constants: dict[str, object],
        encoded: object = None,
    ) -> Failed:  # fmt: skip
        """The rows' failures, by position in `rows`. `encoded`: the rows as
        Store.encode_insert made them (an insert staged ahead)."""
        op = self.table.insert if insert else self.table.update
        failed: Failed = {}
        try:
            if insert:
                with self.tx.savepoint():
                    self.table.insert(columns, rows, constants, encoded)
            elif not self.tx.statement_failure_recoverable:
                with self.tx.savepoint():
                    op(columns, rows, constants)
            else:
                # An update redone sets the same values and stamps, so the rows applied
                # before a failing one may simply be redone below. No savepoint spares its
                # sub-journal of every page already dirty in the transaction: 50k updates
                # into 1M rows, 0.4 CPU-s less.
                op(columns, rows, constants)
            return failed
        except BadValue:
            one_by_one: Sequence[int] = range(len(rows))
        except UniqueViolation:
            one_by_one = self._refused(columns, rows, constants, insert, failed)
            if self._write_each(columns, rows, constants, insert, one_by_one, failed):
                return failed
        for p in one_by_one:
            row = rows[p]
            try:
                # each row in its own savepoint: in PostgreSQL a failed statement would
                # otherwise abort the whole transaction
                with self.tx.savepoint():
                    op(columns, [row], constants)
            except BadValue as e:
                failed[p] = RecordError("INVALID_FIELD", f"The value cannot be stored: {e}")
            except UniqueViolation:
                failed[p] = self._duplicate_value(columns, row, "" if insert else str(row[-1]))
        return failed

    def _refused(
        self, columns: Sequence[str], rows: Rows, constants: dict[str, object], insert: bool,
        failed: Failed,
    ) -> Sequence[int]:  # fmt: skip
        """After a unique index refused a batch: its records that clash for sure with stored
        ones fail; the rest that may go in together go in again with one statement
        (engine.unique). The positions left to write one by one, in order."""
        split = split_refused(self.obj, self.table, columns, rows, update=not insert)
        failed.update(split.failed)
        if split.together:
            write = self.table.insert if insert else self.table.update
            try:
                with self.tx.savepoint():
                    write(columns, [rows[p] for p in split.together], constants)
            except (UniqueViolation, BadValue):  # a record written meanwhile, or a bad value
                return sorted([*split.together, *split.one_by_one])
        return split.one_by_one

    def _write_each(
        self, columns: Sequence[str], rows: Rows, constants: dict[str, object], insert: bool,
        positions: Sequence[int], failed: Failed,
    ) -> bool:  # fmt: skip
        """The rows at `positions` written one by one by the store itself, where it has a
        faster way than write's loop (RecordTable.write_each), with the same outcome; False
        if it has not, or if the database refused a value (the loop then finds which)."""
        if not self.table.writes_each or len(positions) < EACH_MIN_ROWS:
            return False
        try:
            with self.tx.savepoint():
                chunk = [rows[p] for p in positions]
                refused = self.table.write_each(columns, chunk, constants, insert)
        except BadValue:
            return False
        for r in refused:
            if r.column is not None and r.holder is not None:
                error = duplicate_value(r.column, r.holder)
            else:
                error = RecordError("DUPLICATE_VALUE", "duplicate value found")
            failed[positions[r.pos]] = error
        return True

    def _duplicate_value(
        self, columns: Sequence[str], row: Sequence[object], own_id: str
    ) -> RecordError:
        """The first unique column, in the batch's order, whose value another record holds."""
        for col, v in zip(columns, row, strict=False):
            f = self.obj.field(col)
            if f is None or not f.unique or v is None or v == "":
                continue
            for _, rid, _ in self.table.lookup(f.name, [str(v)]):
                if rid != own_id:
                    return duplicate_value(f.name, rid)
        return RecordError("DUPLICATE_VALUE", "duplicate value found")
