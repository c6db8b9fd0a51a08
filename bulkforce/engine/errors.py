"""Per-record errors in Salesforce's shape: `STATUS_CODE:message:Field1,Field2 --` (spec §5.1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordError:
    code: str
    message: str
    fields: tuple[str, ...] = ()

    def render(self) -> str:
        # `…:Name --` with fields, `…:--` without (both observed on real orgs)
        tail = ",".join(self.fields) + " --" if self.fields else "--"
        return f"{self.code}:{self.message}:{tail}"


def required_missing(names: list[str]) -> RecordError:
    return RecordError(
        "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(names)}]", tuple(names)
    )


def wrong_type(label: str, name: str, value: str) -> RecordError:
    return RecordError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{label}: value not of required type: {value}", (name,)
    )


def malformed_id(label: str, name: str, value: str) -> RecordError:
    return RecordError("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", (name,))


def not_writable(name: str) -> RecordError:
    return RecordError(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {name}. Please check the security settings of this "
        "field and verify that it is read/write for your profile or permission set.",
        (name,),
    )


def malformed_rows(problems: dict[int, str]) -> dict[int, RecordError]:
    """Record errors for rows the CSV reader could not read cleanly (spec §2.5.1, §3.11.1:
    a space or text next to a quote fails that record)."""
    return {i: RecordError("INVALID_FIELD", f"Malformed CSV row: {p}") for i, p in problems.items()}


INVALID_CROSS_REFERENCE = RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
ENTITY_IS_DELETED = RecordError("ENTITY_IS_DELETED", "entity is deleted")
