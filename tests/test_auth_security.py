"""Who gets in: every route but the login endpoints and the version list wants a valid token;
expired and revoked tokens get each API's own error; repeated failures lock a user out;
secrets are stored hashed and never written to the log."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from auth_helpers import (
    Accounts,
    accounts_of,
    bulk1_create,
    bulk2_create,
    bulkforce,
    password_grant,
    provision,
    session_id,
    soap_login,
    token_request,
)
from conftest import API, Server

from bulkforce.boot import build_context
from bulkforce.http.app import create_app

INVALID_SESSION_2 = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
BAD_LOGIN = {"error": "invalid_grant", "error_description": "authentication failure"}
PUBLIC = {
    ("POST", "/services/oauth2/token"),
    ("POST", "/services/oauth2/revoke"),
    ("GET", "/services/oauth2/revoke"),
    ("POST", "/services/Soap/u/{ver}"),
    ("POST", "/services/Soap/u/{ver}/{org}"),
    ("GET", "/services/data"),
}
SAMPLES = {"ver": API, "job": "750R0000000001AIAQ", "batch": "751R0000000001AIAQ"}


def route_templates(tmp_path: Path) -> list[tuple[str, str, bool]]:
    """(method, path template, public) for every route the real app serves."""
    ctx = build_context(tmp_path / "introspect", None, [], 10**6)
    app = create_app(ctx, "unused-fixed-token", workers=0)
    out = []
    for route in app.state.router.routes:
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route.pattern.pattern)
        template = template.removeprefix("^").removesuffix("$")
        out.extend((method, template, route.public) for method in route.methods)
    ctx.store.close()
    return out


def concrete(template: str) -> str:
    if "{ver}" in template and "/services/data/" in template:
        template = template.replace("v{ver}", f"v{API}")
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m[1], "00DR0000000bfAd"), template)


@pytest.fixture
def accounts_server(make_server: Callable[..., Server], tmp_path: Path) -> Callable[..., Server]:
    """A private server with provisioned accounts (see auth_helpers.provision)."""

    def make(*args: str) -> Server:
        data_dir = tmp_path / f"acc{len(list(tmp_path.iterdir()))}"
        data_dir.mkdir()
        accounts = provision(data_dir)
        srv = make_server(*args, data_dir=data_dir)
        srv.accounts = accounts  # type: ignore[attr-defined]
        return srv

    return make


def accounts(srv: Server) -> Accounts:
    return accounts_of(srv)


def test_only_login_endpoints_answer_without_a_token(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    routes = route_templates(tmp_path)
    assert {(m, t) for m, t, public in routes if public} == PUBLIC
    srv = make_server()
    checked = 0
    # one client: making one per request (its TLS context, CA bundle) took ~40 ms each
    client = httpx.Client(timeout=30)
    for method, template, public in routes:
        if public:
            continue
        url = srv.url + concrete(template)
        bulk1 = "/services/async/" in template
        for headers in ({}, {"Authorization": "Bearer 00Dnope!AQfake"},
                        {"X-SFDC-Session": "00Dnope!AQfake"}):  # fmt: skip
            r = client.request(method, url, headers=headers, content=b"x")
            if bulk1:
                assert r.status_code == 400, (method, url, r.text)
                assert "<exceptionCode>InvalidSessionId</exceptionCode>" in r.text
            elif method == "HEAD":  # a HEAD answer carries the status only
                assert r.status_code == 401, (method, url)
            else:
                assert (r.status_code, r.json()) == (401, INVALID_SESSION_2), (method, url)
            checked += 1
    assert checked >= 3 * 15
    # paths that match no route reveal nothing either
    r = client.get(f"{srv.url}/services/data/v{API}/no/such/thing")
    assert r.status_code == 401
    client.close()


def test_expired_sessions(accounts_server: Callable[..., Server]) -> None:
    srv = accounts_server("--session-seconds", "1")
    acc = accounts(srv)
    r = soap_login(srv, acc.bob, acc.bob_password)
    assert "<sessionSecondsValid>1</sessionSecondsValid>" in r.text
    soap = session_id(r)
    oauth = password_grant(srv, acc, acc.bob, acc.bob_password).json()["access_token"]
    issued = time.monotonic()
    assert bulk2_create(srv, oauth).status_code == 200
    time.sleep(max(0.0, issued + 1.5 - time.monotonic()))  # past the 1 s lifetime, unused
    for token in (soap, oauth):
        r = bulk2_create(srv, token)
        assert (r.status_code, r.json()) == (401, INVALID_SESSION_2)
        r = bulk1_create(srv, token)
        assert r.status_code == 400
        assert "<exceptionCode>InvalidSessionId</exceptionCode>" in r.text
    assert bulk2_create(srv, srv.token).status_code == 200  # the fixed token does not expire


def test_lockout_after_failed_logins(accounts_server: Callable[..., Server]) -> None:
    srv = accounts_server("--lockout-attempts", "3", "--lockout-seconds", "600")
    acc = accounts(srv)
    for _ in range(3):
        assert password_grant(srv, acc, acc.alice, "guess").json() == BAD_LOGIN
    # the right password no longer helps, on either login
    assert password_grant(srv, acc, acc.alice, acc.alice_password).json() == BAD_LOGIN
    r = soap_login(srv, acc.alice, acc.alice_password)
    assert r.status_code == 500 and "or user locked out" in r.text
    assert "locked" in bulkforce(srv.data_dir, "user", "list").stdout
    # other users are not affected, and a refresh token is not a password login
    assert password_grant(srv, acc, acc.bob, acc.bob_password).status_code == 200
    bulkforce(srv.data_dir, "user", "unlock", acc.alice)
    assert password_grant(srv, acc, acc.alice, acc.alice_password).status_code == 200


def test_failures_below_the_limit_are_forgiven(accounts_server: Callable[..., Server]) -> None:
    srv = accounts_server("--lockout-attempts", "3")
    acc = accounts(srv)
    for _ in range(2):
        assert password_grant(srv, acc, acc.bob, "guess").json() == BAD_LOGIN
    assert password_grant(srv, acc, acc.bob, acc.bob_password).status_code == 200
    for _ in range(2):  # the count restarted after the good login
        assert password_grant(srv, acc, acc.bob, "guess").json() == BAD_LOGIN
    assert password_grant(srv, acc, acc.bob, acc.bob_password).status_code == 200


def test_removed_user_is_logged_out(accounts_server: Callable[..., Server]) -> None:
    srv = accounts_server()
    acc = accounts(srv)
    token = password_grant(srv, acc, acc.bob, acc.bob_password).json()["access_token"]
    assert bulk2_create(srv, token).status_code == 200
    bulkforce(srv.data_dir, "user", "remove", acc.bob)
    assert bulk2_create(srv, token).status_code == 401
    assert password_grant(srv, acc, acc.bob, acc.bob_password).json() == BAD_LOGIN
    assert acc.bob not in bulkforce(srv.data_dir, "user", "list").stdout
    r = bulkforce(srv.data_dir, "user", "remove", acc.bob, ok=False)
    assert r.returncode == 1 and "no user" in r.stderr


def test_secrets_hashed_and_never_logged(accounts_server: Callable[..., Server]) -> None:
    srv = accounts_server("--log-level", "debug")
    acc = accounts(srv)
    # a user made without the test-only option gets a realistic argon2id hash
    bulkforce(srv.data_dir, "user", "add", "carol@example.com", "--password", "Pa55-carol")
    secrets = [acc.alice_password, acc.bob_password, "Pa55-carol", acc.client_secret,
               acc.refresh_token]  # fmt: skip
    tokens = [
        session_id(soap_login(srv, "carol@example.com", "Pa55-carol")),
        password_grant(srv, acc, acc.alice, acc.alice_password).json()["access_token"],
        token_request(srv, {"grant_type": "refresh_token", "refresh_token": acc.refresh_token,
                            "client_id": acc.client_id}).json()["access_token"],
    ]  # fmt: skip
    for token in tokens:
        assert bulk2_create(srv, token).status_code == 200
        assert bulk1_create(srv, token).status_code == 201
        httpx.post(f"{srv.url}/services/oauth2/revoke", data={"token": token}, timeout=30)
        assert bulk2_create(srv, token).status_code == 401
    password_grant(srv, acc, acc.alice, acc.bob_password)  # a failure, logged as one
    log = srv.log()
    assert "login failed: wrong password for " + acc.alice in log
    for secret in [*secrets, *tokens]:
        assert secret not in log
    db = sqlite3.connect(f"file:{srv.db_path}?mode=ro", uri=True)
    try:
        hashes = dict(db.execute("SELECT username, credential_hash FROM bf_user").fetchall())
        assert hashes["carol@example.com"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        stored = "\n".join(
            str(v) for table in ("bf_user", "bf_app", "bf_session", "bf_meta")
            for row in db.execute(f"SELECT * FROM {table}") for v in row
        )  # fmt: skip
    finally:
        db.close()
    for secret in [*secrets, *tokens]:
        assert secret not in stored


@pytest.fixture
def cli_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "cli"


def test_cli_rejects_bad_input(cli_dir: Path) -> None:
    r = bulkforce(cli_dir, "user", "add", "not-an-email", "--password", "x", ok=False)
    assert r.returncode != 0 and "username" in r.stderr
    bulkforce(cli_dir, "user", "add", "dup@example.com", "--password", "x",
              "--insecure-fast-hash")  # fmt: skip
    r = bulkforce(cli_dir, "user", "add", "DUP@example.com", "--password", "y", ok=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    r = bulkforce(cli_dir, "app", "add", "x", "--run-as", "ghost@example.com", ok=False)
    assert r.returncode != 0 and "no user" in r.stderr
    r = bulkforce(cli_dir, "app", "token", "3MVG9ghost", "dup@example.com", ok=False)
    assert r.returncode != 0 and "no connected app" in r.stderr
