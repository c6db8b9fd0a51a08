"""SOQL tokens. Words are not classified as keywords here: SOQL reserves few words, and which
ones act as keywords depends on where they stand (`FROM Group`, `FROM Order`), so the parser
decides. Dates, datetimes and numbers are recognised by shape (they are unquoted in SOQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from bulkforce.soql.errors import MALFORMED, SoqlError, at


class Kind(Enum):
    WORD = "word"
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    OP = "op"  # = != <> < <= > >=
    PUNCT = "punct"  # ( ) , . :
    EOF = "eof"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str  # as written (strings: the body between the quotes, escapes undone later)
    pos: int  # offset in the query
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    def is_word(self, *words: str) -> bool:
        return self.kind is Kind.WORD and self.text.upper() in words

    def is_punct(self, ch: str) -> bool:
        return self.kind is Kind.PUNCT and self.text == ch

    def shown(self) -> str:
        """The token as Salesforce names it in `unexpected token:` messages."""
        if self.kind is Kind.EOF:
            return "<EOF>"
        if self.kind is Kind.STRING:
            return f"'{self.text}'"
        return self.text


_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:?\d{2})(?![\w.:])"
)
_DATETIME_NO_ZONE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\w:])")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z(?![\w.:])")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![\w.])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A currency literal with decimals (`USD300.50`) is one word; a path part after a dot never
# starts with a digit, so this cannot swallow `Account.Name`.
_CURRENCY = re.compile(r"[A-Za-z]{3}\d+\.\d+(?![\w.])")
_OP = re.compile(r"!=|<>|<=|>=|=|<|>")
_SPACE = re.compile(r"\s+")
_PUNCT = "(),.:"


# What may start where a digit (or a sign before one) stands, then everything else; the first
# rule that matches wins. A datetime without a zone is an error of its own (kind None).
_NUMERIC: list[tuple[Kind | None, re.Pattern[str]]] = [
    (Kind.DATETIME, _DATETIME), (None, _DATETIME_NO_ZONE), (Kind.DATE, _DATE),
    (Kind.TIME, _TIME), (Kind.NUMBER, _NUMBER),
]  # fmt: skip
_OTHER: list[tuple[Kind | None, re.Pattern[str]]] = [
    (Kind.WORD, _CURRENCY), (Kind.WORD, _WORD), (Kind.OP, _OP),
]  # fmt: skip


def _match(rules: list[tuple[Kind | None, re.Pattern[str]]], text: str, i: int) -> Token | None:
    for kind, rule in rules:
        m = rule.match(text, i)
        if m:
            if kind is None:  # Salesforce's lexer gives up on the character after the seconds
                raise _no_viable(text, m.end())
            return Token(kind, m[0], i, m.end())
    return None


def _no_viable(text: str, pos: int) -> SoqlError:
    ch = text[pos] if pos < len(text) else "<EOF>"
    return at(MALFORMED, text, pos, f"no viable alternative at character '{ch}'")


def _string_end(text: str, start: int) -> int:
    """Offset just past the closing quote of the string opening at `start`."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            return i + 1
        i += 1
    raise at(MALFORMED, text, start, "unexpected token: '<EOF>'")


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while True:
        m = _SPACE.match(text, i)
        if m:
            i = m.end()
        if i >= n:
            out.append(Token(Kind.EOF, "", n, n))
            return out
        ch = text[i]
        if ch == "'":
            end = _string_end(text, i)
            out.append(Token(Kind.STRING, text[i + 1 : end - 1], i, end))
            i = end
            continue
        numeric = ch.isdigit() or (ch in "+-." and i + 1 < n and text[i + 1].isdigit())
        tok = _match(_NUMERIC if numeric else _OTHER, text, i)
        if tok is not None:
            out.append(tok)
            i = tok.end
            continue
        if ch in _PUNCT:
            out.append(Token(Kind.PUNCT, ch, i, i + 1))
            i += 1
            continue
        raise _no_viable(text, i)


_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b",
            "f": "\f", "%": "\x00%", "_": "\x00_"}  # fmt: skip


def unescape(tok: Token, query: str) -> str:
    """A string token's value. `\\%` and `\\_` stay marked (NUL before the character, which
    never occurs in data): only LIKE gives them a meaning of their own; `plain` drops the mark."""
    body = tok.text
    if "\\" not in body:
        return body
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            rep = _ESCAPES.get(nxt)
            if rep is None:
                raise at(
                    MALFORMED, query, tok.pos + 1 + i,
                    "Invalid string literal '" + body + "'. Illegal character sequence '\\"
                    + nxt + "' in string literal.",
                )  # fmt: skip
            out.append(rep)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def plain(value: str) -> str:
    """A string value outside LIKE: `\\%` and `\\_` mean the characters themselves."""
    return value.replace("\x00", "")
