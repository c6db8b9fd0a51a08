"""The SOQL engine: the only SOQL parser in bulkforce (lexer → parser → validator → compiler to
parameterised SQL for SQLite and PostgreSQL → row decoding). See QUERY-CONTRACT.md."""

from bulkforce.soql.ast import Query
from bulkforce.soql.compile import compile_query
from bulkforce.soql.errors import SoqlError
from bulkforce.soql.parser import parse
from bulkforce.soql.plan import ChildPlan, Key, OutColumn, Plan
from bulkforce.soql.records import Rec
from bulkforce.soql.rules import Api
from bulkforce.soql.sqlgen import Dialect

__all__ = ["Api", "ChildPlan", "Dialect", "Key", "OutColumn", "Plan", "Query", "Rec",
           "SoqlError", "compile_query", "parse"]  # fmt: skip
