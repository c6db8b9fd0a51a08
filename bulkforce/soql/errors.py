"""SOQL errors with Salesforce's codes and texts (query.md §4).

Every message that points at a place in the query carries Salesforce's caret block: a window
of the offending line, a `^` under the token, and `ERROR at Row:r:Column:c` (1-based).
"""

from __future__ import annotations

# How far the snippet reaches either side of the error: real messages show 30-40 characters,
# cut where a token starts or ends.
_WINDOW = 35

MALFORMED = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
NOT_ENABLED = "FUNCTIONALITY_NOT_ENABLED"


class SoqlError(Exception):
    """A query Salesforce would refuse. `message` is the whole text clients see."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch in "_'."


def caret_block(text: str, pos: int) -> str:
    """`\\n<snippet>\\n<spaces>^\\nERROR at Row:r:Column:c\\n` for offset `pos` of `text`."""
    pos = max(0, min(pos, len(text)))
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_end < 0:
        line_end = len(text)
    row = text.count("\n", 0, pos) + 1
    col = pos - line_start + 1
    start = max(line_start, pos - _WINDOW)
    # never start or end the snippet in the middle of a word
    while (
        start > line_start and start < pos and _is_word(text[start - 1]) and _is_word(text[start])
    ):
        start += 1
    end = min(line_end, pos + _WINDOW)
    while end < line_end and end > pos and _is_word(text[end - 1]) and _is_word(text[end]):
        end -= 1
    snippet = text[start:end].replace("\t", " ")
    return f"\n{snippet}\n{' ' * (pos - start)}^\nERROR at Row:{row}:Column:{col}\n"


def at(code: str, text: str, pos: int, detail: str) -> SoqlError:
    return SoqlError(code, caret_block(text, pos) + detail)


def unexpected(text: str, pos: int, token: str, quoted: bool) -> SoqlError:
    """Salesforce quotes the token where something specific was required (`'<EOF>'`,
    `'NOT'`) and prints it bare for an extra token after a complete clause (`OR`)."""
    shown = f"'{token}'" if quoted else token
    return at(MALFORMED, text, pos, f"unexpected token: {shown}")


def no_such_column(text: str, pos: int, field: str, entity: str) -> SoqlError:
    return at(
        INVALID_FIELD, text, pos,
        f"No such column '{field}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )  # fmt: skip


def bad_relationship(text: str, pos: int, rel: str) -> SoqlError:
    return at(
        INVALID_FIELD, text, pos,
        f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a "
        "custom relationship, be sure to append the '__r' after the custom relationship name. "
        "Please reference your WSDL or the describe call for the appropriate names.",
    )  # fmt: skip


def bad_type(text: str, pos: int, name: str) -> SoqlError:
    return at(
        INVALID_TYPE, text, pos,
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )  # fmt: skip
