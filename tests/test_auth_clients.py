"""Real clients logging in: jsforce 3.10.16 with `loginUrl` set to the server (SOAP login(),
the OAuth password flow, a refresh token), and simple-salesforce 1.12.10 over `serve --tls`
with a requests.Session that trusts the server's local CA. Each runs Bulk jobs afterwards.

jsforce tests need node and `make js`; they skip with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import simple_salesforce.bulk
from auth_helpers import Accounts, accounts_of, server_with_accounts
from conftest import API, Server, unique
from simple_salesforce import Salesforce

JS_DIR = Path(__file__).parent / "js"
NO_PROXY_ENV = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with server_with_accounts(Server(tmp_path_factory.mktemp("clients"))) as server:
        yield server


@pytest.fixture(scope="module")
def acc(srv: Server) -> Accounts:
    return accounts_of(srv)


def run_js(node: str, login_url: str, scenario: str, params: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in NO_PROXY_ENV}
    proc = subprocess.run(
        [node, str(JS_DIR / "login.mjs"), login_url, scenario],
        input=json.dumps(params), capture_output=True, encoding="utf-8", timeout=90,
        cwd=JS_DIR, env=env,
    )  # fmt: skip
    try:
        out: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"login.mjs {scenario}: {proc.stdout}\n{proc.stderr}") from None
    assert proc.returncode == 0 and "error" not in out, out
    return out


def records(tag: str) -> list[dict[str, str]]:
    return [{"LastName": f"{tag}-{i}", "Email": f"{tag}-{i}@example.com"} for i in range(3)]


def assert_loaded(out: dict[str, Any], tag: str, user_id: str) -> None:
    ok = out["results"]["successfulResults"]
    assert sorted(r["LastName"] for r in ok) == [f"{tag}-{i}" for i in range(3)]
    assert out["results"]["failedResults"] == []
    assert out["job"]["state"] == "JobComplete"
    assert out["job"]["createdById"] == user_id


def test_jsforce_soap_login(node: str, srv: Server, acc: Accounts) -> None:
    tag = unique("jssoap")
    out = run_js(node, srv.url, "soap", {
        "username": acc.alice, "password": acc.alice_password, "records": records(tag),
    })  # fmt: skip
    assert out["userInfo"]["id"] == acc.alice_id
    assert out["instanceUrl"] == srv.url
    assert_loaded(out, tag, acc.alice_id)


def test_jsforce_oauth_password_flow(node: str, srv: Server, acc: Accounts) -> None:
    tag = unique("jsoauth")
    out = run_js(node, srv.url, "oauth", {
        "username": acc.bob, "password": acc.bob_password, "clientId": acc.client_id,
        "clientSecret": acc.client_secret, "records": records(tag),
    })  # fmt: skip
    assert out["instanceUrl"] == srv.url
    bob_id = out["userInfo"]["id"]
    assert bob_id != acc.alice_id and bob_id.startswith("005")
    assert_loaded(out, tag, bob_id)


def test_jsforce_refresh_token(node: str, srv: Server, acc: Accounts) -> None:
    tag = unique("jsrefresh")
    out = run_js(node, srv.url, "refresh", {
        "clientId": acc.client_id, "clientSecret": acc.client_secret,
        "refreshToken": acc.refresh_token, "records": records(tag),
    })  # fmt: skip
    # jsforce met 401 INVALID_SESSION_ID with its dead token, refreshed, and went on
    assert out["refreshedToken"] and out["accessToken"] == out["refreshedToken"]
    assert out["instanceUrl"] == srv.url
    assert_loaded(out, tag, acc.alice_id)


def test_jsforce_soap_logout_ends_the_session(node: str, srv: Server, acc: Accounts) -> None:
    out = run_js(node, srv.url, "logout", {"username": acc.bob, "password": acc.bob_password})
    assert out["afterLogout"]["errorCode"] == "INVALID_SESSION_ID"


def test_jsforce_bad_password(node: str, srv: Server, acc: Accounts) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in NO_PROXY_ENV}
    proc = subprocess.run(
        [node, str(JS_DIR / "login.mjs"), srv.url, "soap"],
        input=json.dumps({"username": acc.bob, "password": "wrong", "records": []}),
        capture_output=True, encoding="utf-8", timeout=90, cwd=JS_DIR, env=env,
    )  # fmt: skip
    err = json.loads(proc.stdout)["error"]
    assert proc.returncode == 1
    assert err["message"] == (
        "INVALID_LOGIN: Invalid username, password, security token; or user locked out."
    )


# ---- simple-salesforce over --tls -------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("tls"), ["--tls"], scheme="https")
    with server_with_accounts(server):
        yield server


def trusting_session(server: Server) -> requests.Session:
    s = requests.Session()
    # requests ignores Session.verify when REQUESTS_CA_BUNDLE is set (clients.md §1.1)
    s.trust_env = False
    s.verify = str(server.ca_file)
    return s


def test_tls_prints_the_ca_and_refuses_untrusting_clients(tls_srv: Server) -> None:
    log = tls_srv.log()
    assert f"instance URL: https://127.0.0.1:{tls_srv.port}" in log
    assert f"CA certificate: {tls_srv.ca_file.resolve()}" in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(tls_srv.ingest_url, headers=tls_srv.headers(), timeout=10)  # system CAs only
    with pytest.raises(httpx.TransportError):
        httpx.get(tls_srv.ingest_url.replace("https:", "http:"), timeout=10)
    for host in ("localhost", "127.0.0.1"):
        r = httpx.get(f"https://{host}:{tls_srv.port}/services/data", timeout=10,
                      verify=tls_srv.verify)  # fmt: skip
        assert r.status_code == 200


def test_simple_salesforce_over_tls(tls_srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    acc: Accounts = tls_srv.accounts  # type: ignore[attr-defined]
    session = trusting_session(tls_srv)
    # simple-salesforce cannot aim its own login at a local host; the token comes from the
    # OAuth endpoint through the same trusting session
    r = session.post(f"{tls_srv.url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": acc.client_id, "client_secret": acc.client_secret,
        "username": acc.alice, "password": acc.alice_password,
    }, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["instance_url"] == tls_srv.url
    sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"],
                    version=API, session=session)  # fmt: skip
    tag = unique("sftls")
    results = sf.bulk2.Contact.insert(records=records(tag + "-2"), wait=0.05)  # type: ignore[union-attr]
    assert [(r["numberRecordsProcessed"], r["numberRecordsFailed"]) for r in results] == [(3, 0)]
    # Bulk 1.0 polls every 5 s, hard-coded; only that sleep is shortened
    real_sleep = time.sleep
    monkeypatch.setattr(simple_salesforce.bulk, "sleep", lambda s: real_sleep(min(s, 0.05)))
    out = sf.bulk.Contact.insert(records(tag + "-1"))  # type: ignore[union-attr]
    assert [(r["success"], r["created"]) for r in out] == [(True, True)] * 3
    ids = [r["id"] for r in out]
    created = {
        r["createdById"]
        for r in (session.get(f"{tls_srv.url}/services/data/v{API}/jobs/ingest",
                              headers={"Authorization": f"Bearer {body['access_token']}"},
                              timeout=30).json()["records"])
    }  # fmt: skip
    assert created == {acc.alice_id}
    assert all(i.startswith("003") and len(i) == 18 for i in ids)


def test_a_tls_server_stops_promptly_while_a_client_keeps_its_connection(
    make_server: Callable[..., Server],
) -> None:
    """A requests.Session (simple-salesforce's) keeps its connection open and idle; the server
    must not wait for that client's TLS close_notify (asyncio's 30 s) to stop."""
    srv = make_server("--tls", start=False)
    srv.scheme = "https"
    srv.start()
    session = trusting_session(srv)
    assert session.get(f"{srv.url}/services/data", timeout=10).status_code == 200
    assert srv.proc is not None
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=10)  # before the fix: TimeoutExpired (30 s)
    assert time.monotonic() - t0 < 5
    session.close()


def test_own_certificate_and_ca_kept_across_restarts(
    tls_srv: Server, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    ca_before = tls_srv.ca_file.read_bytes()
    # the user's own certificate: here, the one the first server was issued
    own = make_server(
        "--tls-cert", str(tls_srv.data_dir / "tls" / "server.pem"),
        "--tls-key", str(tls_srv.data_dir / "tls" / "server-key.pem"), start=False,
    )  # fmt: skip
    own.scheme = "https"
    own.data_dir.mkdir(parents=True, exist_ok=True)
    (own.data_dir / "tls").mkdir()
    shutil.copy(tls_srv.ca_file, own.ca_file)  # only so the fixture's readiness check trusts it
    own.start()
    r = httpx.get(f"{own.url}/services/data", verify=tls_srv.verify, timeout=10)
    assert r.status_code == 200
    assert "CA certificate" not in own.log()  # no local CA is made or printed
    assert not (own.data_dir / "tls" / "ca-key.pem").exists()
    tls_srv.stop()
    tls_srv.start()
    assert tls_srv.ca_file.read_bytes() == ca_before  # clients keep trusting the same CA
    assert httpx.get(f"{tls_srv.url}/services/data", verify=tls_srv.verify, timeout=10).is_success
