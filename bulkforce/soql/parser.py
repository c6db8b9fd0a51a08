"""Recursive-descent SOQL parser: tokens → `ast.Query`. Syntax only; names are resolved by
`validate`. Salesforce's own rules are kept where they differ from SQL: AND and OR never mix
at one level without parentheses, NOT only begins a condition group, keywords such as GROUP
and ORDER may name objects."""

from __future__ import annotations

import re

from bulkforce.soql import ast
from bulkforce.soql.dates import RELATIVE, RELATIVE_N, parse_date, parse_datetime, parse_time
from bulkforce.soql.errors import MALFORMED, SoqlError, at, unexpected
from bulkforce.soql.lexer import Kind, Token, plain, tokenize, unescape

# Words that never name a field or alias (soql-parser-js's reserved range, query.md §3.3).
RESERVED = frozenset(
    [
        "AND",
        "AS",
        "ASC",
        "DESC",
        "CUBE",
        "ELSE",
        "EXCLUDES",
        "FALSE",
        "FIRST",
        "FROM",
        "GROUP",
        "BY",
        "HAVING",
        "IN",
        "INCLUDES",
        "LAST",
        "LIKE",
        "LIMIT",
        "NOT",
        "NULL",
        "NULLS",
        "OR",
        "ORDER",
        "ROLLUP",
        "SELECT",
        "TRUE",
        "USING",
        "WHERE",
        "WITH",
        "FOR",
        "UPDATE",
    ]
)
# Words that end a FROM clause when they begin the next clause.
_CLAUSES = frozenset(
    ["WHERE", "WITH", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FOR", "USING", "UPDATE"]
)
_CURRENCY = re.compile(r"([A-Za-z]{3})(-?\d+(?:\.\d+)?)")
_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


MAX_LENGTH = 100_000  # Salesforce's default limit on a SOQL statement
MAX_NESTING = 50  # parentheses deep; far beyond real queries, well within Python's stack
MAX_INT = 2**63 - 1


def parse(text: str) -> ast.Query:
    """Parse a whole SOQL statement; raises SoqlError (MALFORMED_QUERY) with Salesforce's text."""
    if len(text) > MAX_LENGTH:
        raise SoqlError(
            MALFORMED, f"SOQL statements cannot be longer than {MAX_LENGTH:,} characters."
        )
    p = _Parser(text)
    depth = 0
    for tok in p.toks:
        depth += tok.is_punct("(") - tok.is_punct(")")
        if depth > MAX_NESTING:
            raise at(MALFORMED, text, tok.pos, "Query is too deeply nested")
    query = p.query()
    p.expect_end()
    return query


def _number(text: str) -> int | float:
    """An integer while the databases hold it as one (64 bits), else a double."""
    if re.fullmatch(r"[+-]?\d+", text) and abs(int(text)) <= MAX_INT:
        return int(text)
    return float(text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    # ---- token helpers -----------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, n: int = 1) -> Token:
        return self.toks[min(self.i + n, len(self.toks) - 1)]

    def next(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind is not Kind.EOF:
            self.i += 1
        return tok

    def missing(self, tok: Token | None = None) -> SoqlError:
        """Something specific was required here and `tok` is not it."""
        tok = tok or self.tok
        return unexpected(self.text, tok.pos, tok.shown(), quoted=True)

    def extra(self, tok: Token | None = None) -> SoqlError:
        """A complete construct is followed by a token that cannot continue it."""
        tok = tok or self.tok
        if tok.kind is Kind.EOF:
            return self.missing(tok)
        return unexpected(self.text, tok.pos, tok.shown(), quoted=False)

    def word(self, *words: str) -> Token:
        if not self.tok.is_word(*words):
            raise self.missing()
        return self.next()

    def accept(self, *words: str) -> Token | None:
        return self.next() if self.tok.is_word(*words) else None

    def punct(self, ch: str) -> Token:
        if not self.tok.is_punct(ch):
            raise self.missing()
        return self.next()

    def name(self) -> Token:
        if self.tok.kind is not Kind.WORD or self.tok.upper in RESERVED:
            raise self.missing()
        return self.next()

    def expect_end(self) -> None:
        if self.tok.kind is not Kind.EOF:
            raise self.extra()

    # ---- statement ---------------------------------------------------------------------------

    def query(self) -> ast.Query:
        start = self.word("SELECT")
        select = self.select_list()
        self.word("FROM")
        if self.tok.kind is not Kind.WORD:
            raise self.missing()
        obj = self.next()  # any word, reserved or not: FROM Group, FROM Order
        alias = None
        if (
            self.tok.kind is Kind.WORD
            and self.tok.upper not in RESERVED
            and not (self.tok.upper in _CLAUSES and self._clause_follows())
        ):
            alias = self.next().text
        q: dict[str, object] = {}
        if self.accept("USING"):
            self.word("SCOPE")
            q["scope"] = self.name().text
        if self.accept("WHERE"):
            q["where"] = self.condition()
        with_ = []
        while self.accept("WITH"):
            with_.append(self.name().upper)
        q["with_"] = tuple(with_)
        if self.tok.is_word("GROUP") and self.peek().is_word("BY"):
            q["group_pos"] = self.next().pos
            self.next()
            if self.tok.is_word("ROLLUP", "CUBE") and self.peek().is_punct("("):
                q["rollup"] = self.next().upper
                self.punct("(")
                q["group_by"] = self.expr_list()
                self.punct(")")
            else:
                q["group_by"] = self.expr_list()
            if self.accept("HAVING"):
                q["having"] = self.condition()
        if self.tok.is_word("ORDER") and self.peek().is_word("BY"):
            self.next()
            self.next()
            q["order_by"] = self.order_list()
        if self.tok.is_word("LIMIT"):
            q["limit_pos"] = self.next().pos
            q["limit"] = self.integer()
        if self.tok.is_word("OFFSET") and self.peek().kind is Kind.NUMBER:
            q["offset_pos"] = self.next().pos
            q["offset"] = self.integer()
        fors = []
        if self.accept("FOR"):
            fors.append(self.word("VIEW", "REFERENCE", "UPDATE").upper)
        if self.accept("UPDATE"):
            fors.append("UPDATE " + self.word("TRACKING", "VIEWSTAT").upper)
        q["for_"] = tuple(fors)
        return ast.Query(start.pos, select, obj.text, obj.pos, alias, **q)  # type: ignore[arg-type]

    def _clause_follows(self) -> bool:
        """Whether the word at hand begins a clause rather than naming an alias."""
        up, nxt = self.tok.upper, self.peek()
        if up in ("GROUP", "ORDER"):
            return nxt.is_word("BY")
        if up in ("LIMIT", "OFFSET"):
            return nxt.kind is Kind.NUMBER
        return True

    def integer(self) -> int:
        tok = self.tok
        if tok.kind is not Kind.NUMBER or not tok.text.isdigit():
            raise self.missing()
        if int(tok.text) > 2**31 - 1:
            raise self.extra()
        self.next()
        return int(tok.text)

    # ---- SELECT list -------------------------------------------------------------------------

    def select_list(self) -> tuple[ast.SelectItem, ...]:
        items = [self.select_item()]
        while self.tok.is_punct(","):
            self.next()
            items.append(self.select_item())
        return tuple(items)

    def select_item(self) -> ast.SelectItem:
        tok = self.tok
        if tok.is_punct("("):
            self.next()
            sub = self.query()
            self.punct(")")
            return ast.SelectSubquery(tok.pos, sub)
        if tok.is_word("TYPEOF") and self.peek().kind is Kind.WORD and self.peek(2).is_word("WHEN"):
            return self.typeof()
        if tok.is_word("FIELDS") and self.peek().is_punct("("):
            self.next()
            self.punct("(")
            kind = self.word("ALL", "STANDARD", "CUSTOM").upper
            self.punct(")")
            return ast.Fields(tok.pos, kind)
        expr = self.expr()
        if self.tok.kind is Kind.WORD and self.tok.upper not in RESERVED:
            alias = self.next()
            return ast.SelectField(expr, alias.text, alias.pos)
        return ast.SelectField(expr)

    def typeof(self) -> ast.TypeOf:
        start = self.next()
        rel = self.path()
        whens = []
        while self.accept("WHEN"):
            sobject = self.name()
            self.word("THEN")
            whens.append((sobject.text, sobject.pos, self.path_list()))
        otherwise: tuple[ast.FieldPath, ...] = ()
        if self.accept("ELSE"):
            otherwise = self.path_list()
        self.word("END")
        return ast.TypeOf(start.pos, rel, tuple(whens), otherwise)

    def path_list(self) -> tuple[ast.FieldPath, ...]:
        out = [self.path()]
        while self.tok.is_punct(","):
            self.next()
            out.append(self.path())
        return tuple(out)

    def path(self) -> ast.FieldPath:
        first = self.name()
        parts, offsets = [first.text], [first.pos]
        while self.tok.is_punct(".") and self.tok.pos == self.toks[self.i - 1].end:
            self.next()
            part = self.tok
            if part.kind is not Kind.WORD:
                raise self.missing()
            self.next()
            parts.append(part.text)
            offsets.append(part.pos)
        return ast.FieldPath(first.pos, tuple(parts), tuple(offsets))

    def expr(self) -> ast.Expr:
        tok = self.tok
        if tok.kind is Kind.WORD and self.peek().is_punct("(") and tok.upper not in RESERVED:
            self.next()
            self.next()
            args: tuple[ast.Expr, ...] = ()
            if not self.tok.is_punct(")"):
                args = self.expr_list()
            self.punct(")")
            return ast.Call(tok.pos, tok.upper, args)
        return self.path()

    def expr_list(self) -> tuple[ast.Expr, ...]:
        out = [self.expr()]
        while self.tok.is_punct(","):
            self.next()
            out.append(self.expr())
        return tuple(out)

    def order_list(self) -> tuple[ast.OrderItem, ...]:
        out = []
        while True:
            expr = self.expr()
            desc = False
            if self.accept("DESC"):
                desc = True
            else:
                self.accept("ASC")
            nulls_last = None
            if self.accept("NULLS"):
                nulls_last = self.word("FIRST", "LAST").upper == "LAST"
            out.append(ast.OrderItem(expr, desc, nulls_last))
            if not self.tok.is_punct(","):
                return tuple(out)
            self.next()

    # ---- conditions --------------------------------------------------------------------------

    def condition(self) -> ast.Cond:
        """logical := NOT group | group (AND group)* | group (OR group)*"""
        if self.tok.is_word("NOT"):
            tok = self.next()
            return ast.Not(tok.pos, self.group())
        first = self.group()
        if not self.tok.is_word("AND", "OR"):
            return first
        joiner = self.tok.upper
        items = [first]
        while self.tok.is_word(joiner):
            self.next()
            items.append(self.group())
        if self.tok.is_word("AND", "OR"):
            raise self.extra()  # `a AND b OR c`: Salesforce wants parentheses
        return ast.And(tuple(items)) if joiner == "AND" else ast.Or(tuple(items))

    def group(self) -> ast.Cond:
        if self.tok.is_punct("("):
            self.next()
            inner = self.condition()
            if not self.tok.is_punct(")"):
                raise self.extra()
            self.next()
            return inner
        return self.simple()

    def simple(self) -> ast.Cond:
        if self.tok.kind is not Kind.WORD or self.tok.upper in RESERVED:
            raise self.missing()
        left = self.expr()
        tok = self.tok
        if tok.kind is Kind.OP:
            self.next()
            return ast.Compare(tok.pos, left, _OPS[tok.text], self.value())
        if tok.is_word("LIKE"):
            self.next()
            return ast.Compare(tok.pos, left, "LIKE", self.value())
        if tok.is_word("INCLUDES", "EXCLUDES"):
            self.next()
            return ast.Includes(tok.pos, left, tok.upper == "EXCLUDES", self.value_list())
        negated = False
        if tok.is_word("NOT") and self.peek().is_word("IN"):
            self.next()
            negated = True
        if self.tok.is_word("IN"):
            self.next()
            if self.tok.is_punct("(") and self.peek().is_word("SELECT"):
                self.next()
                sub = self.query()
                self.punct(")")
                return ast.InQuery(tok.pos, left, negated, sub)
            return ast.InList(tok.pos, left, negated, self.value_list())
        raise self.missing()

    def value_list(self) -> tuple[ast.Literal, ...]:
        self.punct("(")
        out = [self.value()]
        while self.tok.is_punct(","):
            self.next()
            out.append(self.value())
        self.punct(")")
        return tuple(out)

    def value(self) -> ast.Literal:
        tok = self.next()
        kind, text = tok.kind, tok.text
        if kind is Kind.STRING:
            return ast.Literal(tok.pos, "string", unescape(tok, self.text), tok.shown())
        if kind is Kind.NUMBER:
            return ast.Literal(tok.pos, "number", _number(text), text)
        if kind is Kind.DATE:
            return ast.Literal(tok.pos, "date", self.checked(parse_date, tok), text)
        if kind is Kind.TIME:
            return ast.Literal(tok.pos, "time", self.checked(parse_time, tok), text)
        if kind is Kind.DATETIME:
            return ast.Literal(tok.pos, "datetime", self.checked(parse_datetime, tok), text)
        if kind is Kind.WORD:
            up = tok.upper
            if up in ("TRUE", "FALSE"):
                return ast.Literal(tok.pos, "boolean", up == "TRUE", text)
            if up == "NULL":
                return ast.Literal(tok.pos, "null", None, text)
            if up in RELATIVE:
                return ast.Literal(tok.pos, "relative", (up, 0), text)
            if up in RELATIVE_N:
                colon, num = self.tok, self.peek()
                if not (colon.is_punct(":") and colon.pos == tok.end):
                    raise self.missing()
                self.next()
                if num.kind is not Kind.NUMBER or not num.text.isdigit() or num.pos != colon.end:
                    raise self.missing(num)
                self.next()
                return ast.Literal(tok.pos, "relative", (up, int(num.text)), text + ":" + num.text)
            m = _CURRENCY.fullmatch(text)
            if m:
                return ast.Literal(tok.pos, "currency", _number(m[2]), text)
        raise self.missing(tok)

    def checked(self, conv: object, tok: Token) -> object:
        try:
            return conv(tok.text)  # type: ignore[operator]
        except ValueError:
            raise at(
                MALFORMED,
                self.text,
                tok.pos,
                f"line 1:{tok.pos} no viable alternative at character '{tok.text[0]}'",
            ) from None


__all__ = ["RESERVED", "parse", "plain"]
