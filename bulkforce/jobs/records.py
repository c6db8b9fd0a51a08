"""REST record writes: single records, collections and trees, applied synchronously through
the bulk engine (engine/writes.py) in one transaction per call.

A composite request with allOrNone runs its subrequests inside `unit()`: they share one
transaction, and the composite rolls it back when any of them fails.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bulkforce.engine import ids
from bulkforce.engine.coerce import coerce
from bulkforce.engine.errors import RecordError
from bulkforce.engine.schema import SObject
from bulkforce.engine.writes import RecordWrite, WriteResult, apply_writes
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.service import Context
from bulkforce.model import Operation, iso, utcnow
from bulkforce.store import Tx
from bulkforce.store.rows import parse_iso
from bulkforce.wire.records import record_cells

NOT_FOUND = "The requested resource does not exist"
MAX_RECORDS = 200


class Rollback(Exception):
    """Raised inside `unit()` to undo everything the unit did."""


@dataclass
class Outcome:
    """A multi-record call's results, and whether all-or-none rolled them back."""

    results: list[WriteResult]
    rolled_back: bool = False


class _Failed(Exception):
    def __init__(self, results: list[WriteResult]) -> None:
        self.results = results


def bad_external_field(name: str) -> ServiceError:
    return ServiceError(
        Kind.NOT_FOUND, f"Provided external ID field does not exist or is not accessible: {name}"
    )


def too_many() -> ServiceError:
    return ServiceError(
        Kind.LIMIT_EXCEEDED,
        f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
    )


class RecordService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._local = threading.local()

    # ---- transactions ------------------------------------------------------------------------

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Calls made inside (in this thread) share one transaction and are all-or-none
        whatever they ask (a composite's allOrNone overrides its collections'); raise Rollback
        to undo all of them."""
        try:
            with self.ctx.store.transaction() as tx:
                self._local.tx = tx
                self._local.failed = False
                try:
                    yield
                finally:
                    self._local.tx = None
        except Rollback:
            pass

    def unit_failed(self) -> bool:
        """Whether a call inside the current unit had a record fail (even one whose answer is
        200, such as a collection's)."""
        return bool(getattr(self._local, "failed", False))

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        tx: Tx | None = getattr(self._local, "tx", None)
        if tx is None:
            with self.ctx.store.transaction() as own:
                yield own
        else:
            with tx.savepoint():  # a failed all-or-none call undoes only itself
                yield tx

    def _apply(
        self, user_id: str, writes: Sequence[RecordWrite], all_or_none: bool, undo: bool = False
    ) -> Outcome:
        """Apply `writes` in one transaction (or a savepoint of the unit's); with all-or-none
        any failure rolls all of them back, and `undo` rolls them back regardless: the results
        they would have had."""
        in_unit = getattr(self._local, "tx", None) is not None
        try:
            with self.transaction() as tx:
                results = apply_writes(self.ctx.schema, tx, writes, user_id, iso(utcnow()))
                if undo or ((all_or_none or in_unit) and not all(r.ok for r in results)):
                    raise _Failed(results)
        except _Failed as f:
            if in_unit:
                self._local.failed = True
            return Outcome(f.results, rolled_back=True)
        return Outcome(results)

    # ---- lookups -----------------------------------------------------------------------------

    def sobject(self, name: str) -> SObject:
        obj = self.ctx.schema.get(name)
        if obj is None:
            raise ServiceError(Kind.NOT_FOUND, NOT_FOUND)
        return obj

    def _live_record(self, obj: SObject, raw_id: str) -> dict[str, Any]:
        """The stored record a row URL names; 404 as Salesforce answers for each case."""
        rid = ids.normalize(raw_id)
        if rid is None:
            raise bad_external_field(raw_id)
        row = self.ctx.store.get_record(obj, rid) if rid[:3] == obj.key_prefix else None
        if row is None:
            raise ServiceError(Kind.NOT_FOUND, NOT_FOUND)
        if row.get("IsDeleted"):
            raise ServiceError(Kind.ENTITY_IS_DELETED, "entity is deleted")
        return row

    def matching(self, obj: SObject, field_name: str, value: str) -> list[str]:
        """Ids of the live records whose external id (or idLookup) field equals `value`."""
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.id_lookup):
            raise bad_external_field(field_name)
        if f.name == "Id":
            rid = ids.normalize(value)
            return [rid] if rid is not None and rid[:3] == obj.key_prefix else []
        vals, errs = coerce(f, [value])
        if errs or vals[0] in ("", None):
            return []
        with self.transaction() as tx:
            found = tx.records(obj).lookup(f.name, [vals[0]])
        return sorted(rid for _, rid, deleted in found if not deleted)

    def get_by_external(self, name: str, field_name: str, value: str) -> tuple[SObject, list[str]]:
        obj = self.sobject(name)
        return obj, self.matching(obj, field_name, value)

    def unmodified_since(self, row: Mapping[str, Any], since: str | None) -> None:
        """`If-Unmodified-Since` on a row PATCH: 412 when the record changed after it."""
        if since is None:
            return
        try:
            limit = dt.datetime.strptime(since.strip(), "%a, %d %b %Y %H:%M:%S GMT").replace(
                tzinfo=dt.UTC
            )
        except ValueError:
            raise ServiceError(
                Kind.INVALID_INPUT, f"Invalid If-Unmodified-Since header: {since}"
            ) from None
        if modified(row) > limit:
            raise ServiceError(
                Kind.PRECONDITION_FAILED,
                "The requested resource has been modified since the If-Unmodified-Since date",
            )

    # ---- single records ----------------------------------------------------------------------

    def create(self, user_id: str, name: str, body: Mapping[str, Any]) -> WriteResult:
        obj = self.sobject(name)
        write = RecordWrite(obj, Operation.INSERT, record_cells(self.ctx.schema, obj, body))
        return self._apply(user_id, [write], False).results[0]

    def update(
        self, user_id: str, name: str, raw_id: str, body: Mapping[str, Any],
        unmodified_since: str | None = None,
    ) -> WriteResult:  # fmt: skip
        obj = self.sobject(name)
        row = self._live_record(obj, raw_id)
        self.unmodified_since(row, unmodified_since)
        cells = record_cells(self.ctx.schema, obj, body)
        cells.pop("Id", None)  # the URL names the record
        cells["Id"] = row["Id"]
        return self._apply(user_id, [RecordWrite(obj, Operation.UPDATE, cells)], False).results[0]

    def delete(self, user_id: str, name: str, raw_id: str) -> WriteResult:
        obj = self.sobject(name)
        row = self._live_record(obj, raw_id)
        write = RecordWrite(obj, Operation.DELETE, {"Id": row["Id"]})
        return self._apply(user_id, [write], False).results[0]

    def upsert(
        self, user_id: str, name: str, field_name: str, value: str, body: Mapping[str, Any]
    ) -> WriteResult | list[str]:
        """The upserted record's result, or the Ids of several matches (nothing written)."""
        obj = self.sobject(name)
        matches = self.matching(obj, field_name, value)
        if len(matches) > 1:
            return matches
        key = obj.field(field_name)
        assert key is not None  # matching() checked it
        cells = record_cells(self.ctx.schema, obj, body)
        cells.pop(key.name, None)  # the URL's value is the key
        if key.name == "Id":
            if not matches:
                raise ServiceError(Kind.NOT_FOUND, NOT_FOUND)
            cells["Id"] = matches[0]
            op, ext = Operation.UPDATE, None
        else:
            cells[key.name] = value
            op, ext = Operation.UPSERT, key.name
        return self._apply(user_id, [RecordWrite(obj, op, cells, ext)], False).results[0]

    # ---- collections -------------------------------------------------------------------------

    def _typed(self, record: Any) -> tuple[SObject, dict[str, Any]]:
        if not isinstance(record, dict):
            raise ServiceError(Kind.JSON_PARSE, "Each record must be a JSON object")
        attrs = record.get("attributes")
        type_name = attrs.get("type") if isinstance(attrs, dict) else None
        if not isinstance(type_name, str) or not type_name:
            raise ServiceError(
                Kind.INVALID_INPUT, "When using sObject Collections, each record needs "
                "attributes with its type"
            )  # fmt: skip
        obj = self.ctx.schema.get(type_name)
        if obj is None:
            raise ServiceError(Kind.INVALID_ENTITY, f"sObject type '{type_name}' is not supported.")
        return obj, record

    def save_many(
        self, user_id: str, operation: Operation, records: Any, all_or_none: bool,
        sobject: str | None = None, ext_field: str | None = None,
    ) -> Outcome:  # fmt: skip
        """Create, update or upsert (on `ext_field` of `sobject`) up to 200 records."""
        if not isinstance(records, list):
            raise ServiceError(Kind.JSON_PARSE, "'records' must be a list of records")
        if len(records) > MAX_RECORDS:
            raise too_many()
        key = None
        if operation is Operation.UPSERT:
            obj = self.sobject(sobject or "")
            key = obj.field(ext_field or "")
            if key is None or not (key.external_id or key.id_lookup):
                raise bad_external_field(ext_field or "")
        writes = []
        for record in records:
            obj, body = self._typed(record)
            cells = record_cells(self.ctx.schema, obj, body)
            if operation is Operation.UPSERT and key is not None:
                writes.append(RecordWrite(obj, operation, cells, key.name))
            else:
                writes.append(RecordWrite(obj, operation, cells))
        return self._apply(user_id, writes, all_or_none)

    def delete_many(self, user_id: str, raw_ids: Sequence[str], all_or_none: bool) -> Outcome:
        """Soft-delete records of any objects by Id. An Id of no loaded object fails alone."""
        if len(raw_ids) > MAX_RECORDS:
            raise too_many()
        writes: list[RecordWrite] = []
        slots: list[WriteResult | int] = []
        for raw in raw_ids:
            rid = ids.normalize(raw)
            obj = self.ctx.schema.by_prefix(rid[:3]) if rid else None
            if obj is None:
                err = RecordError("MALFORMED_ID", f"malformed id {raw}")
                slots.append(WriteResult(raw if rid else "", False, err))
                continue
            slots.append(len(writes))
            writes.append(RecordWrite(obj, Operation.DELETE, {"Id": raw}))
        failed_early = any(isinstance(s, WriteResult) for s in slots)
        if all_or_none and failed_early:
            outcome = self._apply(user_id, writes, True, undo=True)  # an unknown Id fails all
        else:
            outcome = self._apply(user_id, writes, all_or_none)
        results = [s if isinstance(s, WriteResult) else outcome.results[s] for s in slots]
        return Outcome(results, outcome.rolled_back or (all_or_none and failed_early))

    def retrieve_many(
        self, name: str, raw_ids: Sequence[str], fields: Sequence[str]
    ) -> tuple[SObject, list[tuple[str, dict[str, Any]] | None]]:
        """Per Id: (record Id, the fields' values), or None for no live record."""
        obj = self.sobject(name)
        if len(raw_ids) > 2000:
            raise too_many()
        wanted = []
        for fname in fields:
            f = obj.field(fname)
            if f is None:
                raise ServiceError(
                    Kind.INVALID_FIELD, f"No such column '{fname}' on sobject of type {obj.name}"
                )
            wanted.append(f)
        out: list[tuple[str, dict[str, Any]] | None] = []
        for raw in raw_ids:
            rid = ids.normalize(raw)
            row = (
                self.ctx.store.get_record(obj, rid)
                if rid is not None and rid[:3] == obj.key_prefix
                else None
            )
            if row is None or row.get("IsDeleted"):
                out.append(None)
            else:
                out.append((row["Id"], {f.name: row.get(f.name) for f in wanted}))
        return obj, out


def modified(row: Mapping[str, Any]) -> dt.datetime:
    """A stored record's LastModifiedDate to the second, as HTTP dates compare."""
    return parse_iso(str(row.get("LastModifiedDate"))).replace(microsecond=0)
