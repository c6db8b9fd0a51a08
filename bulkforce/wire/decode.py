"""Decoding untrusted JSON and XML bodies. The standard parsers raise more than their documented
errors on hostile input (RecursionError for deep nesting, ValueError past 4,300 integer digits,
LookupError for an unknown declared encoding, ValueError for a multi-byte one); every caller must
see one error type it maps to a Salesforce-shaped 4xx."""

from __future__ import annotations

import json
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException


class DecodeError(ValueError):
    """The body is not acceptable JSON / XML; the message says why, for the client."""


def load_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise DecodeError("the JSON document is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integer digit limit
        raise DecodeError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


class UnsafeXml(DecodeError):
    """A DTD or an entity declaration: refused, never expanded."""


def load_xml(data: bytes) -> Element:
    try:
        root: Element = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as e:
        raise UnsafeXml(type(e).__name__) from None
    except SafeET.ParseError as e:
        raise DecodeError(str(e)) from None
    except RecursionError:
        raise DecodeError("the XML document is nested too deeply") from None
    except (LookupError, ValueError) as e:  # unknown or multi-byte declared encoding
        raise DecodeError(f"unsupported XML encoding: {e}") from None
    return root
