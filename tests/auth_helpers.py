"""Helpers for the login tests: accounts made with the `bulkforce user|app` commands, and the
raw OAuth and SOAP requests a client sends."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from conftest import API, Server

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"


def bulkforce(data_dir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a `bulkforce` admin command on a data dir (the server may be running)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", *args, "--data-dir", str(data_dir)],
        capture_output=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def printed(out: str, label: str) -> str:
    """The value of a `label: value` line the CLI printed."""
    for line in out.splitlines():
        if line.startswith(f"{label}: "):
            return line.split(": ", 1)[1].strip()
    raise AssertionError(f"no {label!r} in {out!r}")


@dataclass
class Accounts:
    """alice has a security token (logins append it); bob has none. `etl` runs as alice."""

    alice: str
    alice_password: str  # the password with the security token appended
    alice_id: str
    bob: str
    bob_password: str
    client_id: str
    client_secret: str
    bare_client_id: str  # a connected app with no client-credentials user
    bare_client_secret: str
    refresh_token: str


def provision(data_dir: Path, tag: str = "") -> Accounts:
    """Users and connected apps made the way an admin makes them. The hidden fast-hash option
    only lowers argon2's cost so the suite stays quick; default hashes are checked elsewhere."""
    alice, bob = f"alice{tag}@example.com", f"bob{tag}@example.com"
    out = bulkforce(
        data_dir, "user", "add", alice, "--password", "Secret-1", "--security-token", "TOKEN9",
        "--full-name", "Alice Liddell", "--insecure-fast-hash",
    ).stdout  # fmt: skip
    alice_id = out.rsplit("id ", 1)[1].strip()
    bulkforce(data_dir, "user", "add", bob, "--password", "hunter2!", "--insecure-fast-hash")
    app = bulkforce(data_dir, "app", "add", "etl", "--run-as", alice, "--insecure-fast-hash")
    bare = bulkforce(data_dir, "app", "add", "bare", "--insecure-fast-hash")
    client_id = printed(app.stdout, "client_id")
    refresh = bulkforce(data_dir, "app", "token", client_id, alice).stdout
    return Accounts(
        alice=alice, alice_password="Secret-1TOKEN9", alice_id=alice_id,
        bob=bob, bob_password="hunter2!",
        client_id=client_id, client_secret=printed(app.stdout, "client_secret"),
        bare_client_id=printed(bare.stdout, "client_id"),
        bare_client_secret=printed(bare.stdout, "client_secret"),
        refresh_token=printed(refresh, "refresh_token"),
    )  # fmt: skip


@contextmanager
def server_with_accounts(server: Server) -> Iterator[Server]:
    """`server` running, its data dir holding the `provision` accounts (`server.accounts`)."""
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.accounts = provision(server.data_dir)  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


def accounts_of(server: Server) -> Accounts:
    accounts: Accounts = server.accounts  # type: ignore[attr-defined]
    return accounts


def token_request(server: Server, data: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/services/oauth2/token", data=data, timeout=30, verify=server.verify, **kw
    )


def password_grant(server: Server, acc: Accounts, username: str, password: str) -> httpx.Response:
    return token_request(server, {
        "grant_type": "password", "client_id": acc.client_id, "client_secret": acc.client_secret,
        "username": username, "password": password,
    })  # fmt: skip


def soap_body(username: str, password: str, prefix: str = "n1") -> str:
    """A login() as simple-salesforce words it (other clients use other prefixes)."""
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f'<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="{SOAP_ENV}" '
        f'xmlns:urn="{PARTNER}"><env:Header><urn:CallOptions><urn:client>simple-salesforce'
        "</urn:client><urn:defaultNamespace>sf</urn:defaultNamespace></urn:CallOptions>"
        f'</env:Header><env:Body><{prefix}:login xmlns:{prefix}="{PARTNER}">'
        f"<{prefix}:username>{username}</{prefix}:username>"
        f"<{prefix}:password>{password}</{prefix}:password>"
        f"</{prefix}:login></env:Body></env:Envelope>"
    )


def soap_login(server: Server, username: str, password: str, version: str = API) -> httpx.Response:
    return httpx.post(
        f"{server.url}/services/Soap/u/{version}",
        content=soap_body(username, password),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"},
        timeout=30, verify=server.verify,
    )  # fmt: skip


def session_id(response: httpx.Response) -> str:
    text = response.text
    return text.split("<sessionId>", 1)[1].split("</sessionId>", 1)[0]


def bulk2_create(server: Server, token: str) -> httpx.Response:
    """Create (and leave Open) a Bulk 2.0 job with `token` as Bearer."""
    return httpx.post(
        server.ingest_url, json={"object": "Contact", "operation": "insert"},
        headers={"Authorization": f"Bearer {token}"}, timeout=30, verify=server.verify,
    )  # fmt: skip


BULK1_JOB = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
    "<operation>insert</operation><object>Contact</object><contentType>CSV</contentType>"
    "</jobInfo>"
)


def bulk1_create(server: Server, token: str, header: str = "X-SFDC-Session") -> httpx.Response:
    """Create a Bulk 1.0 job with `token` in `header`."""
    return httpx.post(
        f"{server.url}/services/async/{API}/job", content=BULK1_JOB,
        headers={header: token, "Content-Type": "application/xml; charset=UTF-8"},
        timeout=30, verify=server.verify,
    )  # fmt: skip
