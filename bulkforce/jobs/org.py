"""The org around bulk loads: schema lookups for describe, single records, limits usage,
fixtures loaded through the ingest engine, and resetting records between test runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkforce.engine import ids
from bulkforce.engine.dml import apply_chunk
from bulkforce.engine.errors import malformed_rows
from bulkforce.engine.plan import HeaderError, make_plan
from bulkforce.engine.schema import ChildRelationship, SObject
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.service import Context
from bulkforce.model import BATCH_CELLS, BATCH_SIZE, Operation, iso, utcnow
from bulkforce.wire.csvio import CsvFormatError, RowReader

NOT_FOUND = "The requested resource does not exist"


@dataclass
class LoadReport:
    """What `load-records` did: counts, and (data row number, error string) per failed row;
    row 1 is the first row after the header."""

    object: str
    inserted: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


class OrgService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ---- describe ----------------------------------------------------------------------------

    def sobjects(self) -> list[SObject]:
        return sorted(self.ctx.schema.objects.values(), key=lambda o: o.name.lower())

    def sobject(self, name: str) -> SObject:
        obj = self.ctx.schema.get(name)
        if obj is None:
            raise ServiceError(Kind.NOT_FOUND, NOT_FOUND)
        return obj

    def children(self, parent: SObject) -> list[ChildRelationship]:
        return self.ctx.schema.child_relationships(parent)

    # ---- records -----------------------------------------------------------------------------

    def record(self, name: str, raw_id: str, fields: list[str] | None) -> dict[str, Any]:
        """The stored record's values by field name, in the object's field order."""
        obj = self.sobject(name)
        rid = ids.normalize(raw_id)
        if rid is None or rid[:3] != obj.key_prefix:
            raise ServiceError(Kind.NOT_FOUND, NOT_FOUND)
        wanted = list(obj.fields.values())
        if fields is not None:
            wanted = []
            for fname in fields:
                f = obj.field(fname)
                if f is None:
                    raise ServiceError(
                        Kind.INVALID_FIELD,
                        f"No such column '{fname}' on entity '{obj.name}'. If you are attempting "
                        "to use a custom field, be sure to append the '__c' after the custom "
                        "field name. Please reference your WSDL or the describe call for the "
                        "appropriate names.",
                    )
                wanted.append(f)
        row = self.ctx.store.get_record(obj, rid)
        if row is None:
            raise ServiceError(Kind.NOT_FOUND, NOT_FOUND)
        if row.get("IsDeleted"):
            raise ServiceError(Kind.ENTITY_IS_DELETED, "entity is deleted")
        return {f.name: row.get(f.name) for f in wanted}

    def record_count(self, name: str) -> int:
        return self.ctx.store.count_records(self.sobject(name))

    def browse(
        self, name: str, sort: str | None, descending: bool, page: int, size: int,
        find: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """One page of an object's records (deleted ones too), sorted on a field; `find` is
        (field, value) for a look-up by Id or an external id."""
        obj = self.sobject(name)
        order = obj.field(sort or "Id")
        if order is None:
            raise ServiceError(Kind.INVALID_FIELD, f"No such field '{sort}' on {obj.name}")
        match = None
        if find is not None:
            key = obj.field(find[0])
            if key is None or not (key.name == "Id" or key.external_id or key.id_lookup):
                raise ServiceError(
                    Kind.INVALID_FIELD, f"{find[0]} is not the Id or an external id of {obj.name}"
                )
            value = find[1].strip()
            if key.name == "Id":
                value = ids.normalize(value) or value
            match = (key.name, value)
        rows = self.ctx.store.page_records(
            obj, order.name, descending, max(page, 0) * size, size, match
        )
        return [{f.name: r.get(f.name) for f in obj.fields.values()} for r in rows]

    # ---- limits ------------------------------------------------------------------------------

    def usage(self) -> dict[str, int]:
        """Use in the last 24 hours: Salesforce's daily allocations are rolling."""
        since = iso(utcnow() - dt.timedelta(hours=24))
        return self.ctx.store.usage_since(since)

    # ---- fixtures and reset ------------------------------------------------------------------

    def reset(self, name: str | None) -> dict[str, int]:
        """Delete the records of one object, or of every object. Schema, key prefixes, jobs
        and the org's own User and Organization records stay: they are the org, not its data."""
        if name and self.ctx.schema.get(name) is None:
            known = ", ".join(o.name for o in self.sobjects())
            raise ServiceError(
                Kind.NOT_FOUND,
                f"No object named {name} in the schema (objects: {known}); custom objects come "
                "from the --schema files the server is started with",
            )
        objects = [self.sobject(name)] if name else self.sobjects()
        out = {}
        for obj in objects:
            keep = {
                "User": [self.ctx.settings.user_id],
                "Organization": [self.ctx.settings.org_id],
            }.get(obj.name, [])
            out[obj.name] = self.ctx.store.delete_records(obj, keep)
        return out

    def load_records(
        self, name: str, path: Path, progress: Callable[[int], None] | None = None
    ) -> LoadReport:
        """Insert a CSV file's rows through the ingest engine, 10,000 rows per transaction;
        `progress` hears the bytes read so far after each transaction."""
        obj = self.ctx.schema.get(name)
        if obj is None:
            raise ServiceError(Kind.INVALID_ENTITY, f"Entity '{name}' is not defined")
        report = LoadReport(obj.name)
        try:
            with path.open("rb") as f:
                rows = RowReader(f, ",")
                header = rows.header()
                if header is None:
                    return report
                plan = make_plan(self.ctx.schema, obj, Operation.INSERT, header, None)
                done = 0
                for chunk in _chunks(rows):
                    with self.ctx.store.transaction() as tx:
                        outcome = apply_chunk(
                            self.ctx.schema, plan, tx, chunk, self.ctx.settings.user_id,
                            iso(utcnow()), malformed_rows(rows.malformed),
                        )  # fmt: skip
                    for n, err in enumerate(outcome.errors, start=done + 1):
                        if err is None:
                            report.inserted += 1
                        else:
                            report.failed += 1
                            report.errors.append((n, err.render()))
                    done += len(chunk)
                    if progress is not None:
                        progress(f.tell())
        except OSError as e:
            raise ServiceError(Kind.CLIENT_INPUT, f"{path}: {e.strerror}") from None
        except (CsvFormatError, HeaderError) as e:
            raise ServiceError(Kind.CLIENT_INPUT, f"{path}: {e}") from None
        return report


def _chunks(rows: RowReader) -> Iterator[list[list[str]]]:
    while True:
        chunk = rows.next_rows(BATCH_SIZE, BATCH_CELLS)
        if not chunk:
            return
        yield chunk
