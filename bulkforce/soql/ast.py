"""The typed syntax tree of a SOQL statement, as written (names not yet resolved).

Every node keeps `pos`, its offset in the query text, for Salesforce's caret messages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldPath:
    pos: int
    parts: tuple[str, ...]  # as written: ("c", "Account", "Name")
    offsets: tuple[int, ...]  # where each part starts

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Call:
    """`COUNT()`, `COUNT(Id)`, `CALENDAR_YEAR(CloseDate)`, `convertTimezone(CreatedDate)`…"""

    pos: int
    name: str  # upper-case
    args: tuple[Expr, ...]


Expr = FieldPath | Call


@dataclass(frozen=True)
class Literal:
    """kind: string, number, currency, boolean, null, date, datetime, relative (TODAY,
    LAST_N_DAYS:n)."""

    pos: int
    kind: str
    value: object  # str | int | float | bool | None | date | datetime | (name, n)
    text: str  # as written, for messages


@dataclass(frozen=True)
class Compare:
    pos: int
    left: Expr
    op: str  # = != < <= > >= LIKE  (<> is read as !=)
    right: Literal


@dataclass(frozen=True)
class InList:
    pos: int
    left: Expr
    negated: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class InQuery:
    """Semi-join (`IN (SELECT …)`) or anti-join (`NOT IN (SELECT …)`)."""

    pos: int
    left: Expr
    negated: bool
    query: Query


@dataclass(frozen=True)
class Includes:
    pos: int
    left: Expr
    excludes: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    pos: int
    item: Cond


Cond = Compare | InList | InQuery | Includes | And | Or | Not


@dataclass(frozen=True)
class SelectField:
    expr: Expr
    alias: str | None = None
    alias_pos: int = 0


@dataclass(frozen=True)
class SelectSubquery:
    pos: int
    query: Query


@dataclass(frozen=True)
class TypeOf:
    pos: int
    field: FieldPath  # the polymorphic relationship (`What`)
    whens: tuple[tuple[str, int, tuple[FieldPath, ...]], ...]  # (type, pos, fields)
    otherwise: tuple[FieldPath, ...]


@dataclass(frozen=True)
class Fields:
    pos: int
    kind: str  # ALL, STANDARD, CUSTOM


SelectItem = SelectField | SelectSubquery | TypeOf | Fields


@dataclass(frozen=True)
class OrderItem:
    expr: Expr
    descending: bool = False
    nulls_last: bool | None = None  # None: Salesforce's default for the direction


@dataclass(frozen=True)
class Query:
    pos: int
    select: tuple[SelectItem, ...]
    object: str
    object_pos: int
    alias: str | None = None
    where: Cond | None = None
    group_by: tuple[Expr, ...] = ()
    group_pos: int = 0
    rollup: str | None = None  # ROLLUP / CUBE
    having: Cond | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    limit_pos: int = 0
    offset: int | None = None
    offset_pos: int = 0
    for_: tuple[str, ...] = ()  # VIEW, REFERENCE, UPDATE
    scope: str | None = None  # USING SCOPE
    with_: tuple[str, ...] = field(default=())  # WITH SECURITY_ENFORCED …


DateValue = dt.date | dt.datetime
