"""Helpers shared by the tests that drive real Salesforce clients (not a test module)."""

from __future__ import annotations

from typing import Any

from conftest import API, Server
from simple_salesforce import Salesforce

_ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def is_id(value: Any, prefix: str) -> bool:
    """An 18-char Salesforce id with `prefix` and a correct checksum suffix."""
    if not (isinstance(value, str) and len(value) == 18 and value.isalnum()):
        return False
    suffix = ""
    for c in range(3):
        n = sum(1 << i for i, ch in enumerate(value[c * 5 : c * 5 + 5]) if "A" <= ch <= "Z")
        suffix += _ALPHA[n]
    return value.startswith(prefix) and value[15:] == suffix


def make_sf(server: Server, token: str | None = None) -> Salesforce:
    """simple-salesforce on the test server, `sf.bulk` and `sf.bulk2` included."""
    sf = Salesforce(instance_url=server.url, session_id=token or server.token, version=API)
    # simple-salesforce forces https:// into every URL it builds; both attributes are read on
    # every `sf.bulk` / `sf.bulk2` access, so overriding them is the documented way to use http.
    sf.bulk_url = f"{server.url}/services/async/{API}/"
    sf.bulk2_url = f"{server.url}/services/data/v{API}/jobs/"
    return sf
