"""Logging in over raw HTTP: the OAuth 2.0 token endpoint, SOAP partner login, userinfo,
revoke, the version list and resource map (spec §8, checklist A-01 … A-10).

Accounts are made with `bulkforce user add` / `app add` / `app token` on a private server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from xml.dom import minidom

import httpx
import pytest
from auth_helpers import (
    FAULT_NS,
    PARTNER,
    SOAP_ENV,
    Accounts,
    accounts_of,
    bulk1_create,
    bulk2_create,
    password_grant,
    server_with_accounts,
    session_id,
    soap_login,
    token_request,
)
from client_helpers import is_id
from conftest import API, Server

BAD_LOGIN = {"error": "invalid_grant", "error_description": "authentication failure"}
INVALID_SESSION_2 = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with server_with_accounts(Server(tmp_path_factory.mktemp("auth"))) as server:
        yield server


@pytest.fixture(scope="module")
def acc(srv: Server) -> Accounts:
    return accounts_of(srv)


@pytest.fixture(scope="module")
def org_id(srv: Server, acc: Accounts) -> str:
    r = soap_login(srv, acc.bob, acc.bob_password)
    org: str = (
        minidom.parseString(r.content).getElementsByTagName("organizationId")[0].firstChild.data
    )  # type: ignore[union-attr]
    return org


def oauth_token(srv: Server, acc: Accounts) -> str:
    r = password_grant(srv, acc, acc.alice, acc.alice_password)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


# ---- OAuth 2.0 token endpoint -----------------------------------------------------------------


def test_a01_a02_password_grant(srv: Server, acc: Accounts, org_id: str) -> None:
    before = int(time.time() * 1000)
    r = password_grant(srv, acc, acc.alice, acc.alice_password)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == srv.url  # the host the client reached
    assert body["access_token"].startswith(org_id[:15] + "!")
    assert isinstance(body["issued_at"], str) and body["issued_at"].isdigit()
    assert before - 5000 <= int(body["issued_at"]) <= int(time.time() * 1000) + 5000
    # jsforce takes the last two segments as org id and user id
    *_, org, user = body["id"].split("/")
    assert (org, user) == (org_id, acc.alice_id)
    assert is_id(org, "00D") and is_id(user, "005")
    # Salesforce's signature: HMAC-SHA256 of id + issued_at keyed by the consumer secret
    expected = hmac.new(
        acc.client_secret.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert "refresh_token" not in body  # the password flow never returns one


@pytest.mark.parametrize(
    "who",
    ["wrong password", "no security token", "unknown user", "empty password", "token only"],
)
def test_a03_bad_credentials(srv: Server, acc: Accounts, who: str) -> None:
    username, password = {
        "wrong password": (acc.alice, "Secret-2TOKEN9"),
        "no security token": (acc.alice, "Secret-1"),
        "unknown user": ("nobody@example.com", acc.alice_password),
        "empty password": (acc.bob, ""),
        "token only": (acc.alice, "TOKEN9"),
    }[who]
    r = password_grant(srv, acc, username, password)
    assert r.status_code == 400
    assert r.json() == BAD_LOGIN


def test_usernames_match_case_insensitively(srv: Server, acc: Accounts) -> None:
    r = password_grant(srv, acc, acc.bob.upper(), acc.bob_password)
    assert r.status_code == 200, r.text


def test_unknown_client_wrong_secret_unknown_grant(srv: Server, acc: Accounts) -> None:
    creds = {"username": acc.bob, "password": acc.bob_password, "grant_type": "password"}
    r = token_request(srv, {**creds, "client_id": "3MVG9nope", "client_secret": "x"})
    assert (r.status_code, r.json()) == (
        400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
    )  # fmt: skip
    r = token_request(srv, {**creds, "client_id": acc.client_id, "client_secret": "0" * 64})
    assert (r.status_code, r.json()) == (
        400, {"error": "invalid_client", "error_description": "invalid client credentials"}
    )  # fmt: skip
    r = token_request(srv, {**creds, "client_id": acc.client_id})  # secret missing
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = token_request(srv, {"grant_type": "authorization_code", "code": "x"})
    assert (r.status_code, r.json()) == (
        400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
    )  # fmt: skip


def test_a04_client_credentials(srv: Server, acc: Accounts) -> None:
    # simple-salesforce: client_id:client_secret as HTTP Basic, nothing in the body
    r = token_request(
        srv, {"grant_type": "client_credentials"}, auth=(acc.client_id, acc.client_secret)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"].endswith("/" + acc.alice_id)  # the app's run-as user
    assert bulk2_create(srv, body["access_token"]).json()["createdById"] == acc.alice_id
    # others send the credentials in the body
    r = token_request(srv, {"grant_type": "client_credentials", "client_id": acc.client_id,
                            "client_secret": acc.client_secret})  # fmt: skip
    assert r.status_code == 200, r.text
    r = token_request(srv, {"grant_type": "client_credentials"}, auth=(acc.client_id, "nope"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = token_request(
        srv, {"grant_type": "client_credentials"},
        auth=(acc.bare_client_id, acc.bare_client_secret),
    )  # fmt: skip
    assert (r.status_code, r.json()) == (
        400, {"error": "invalid_grant", "error_description": "no client credentials user enabled"}
    )  # fmt: skip


def test_a05_refresh_token(srv: Server, acc: Accounts) -> None:
    grant = {"grant_type": "refresh_token", "refresh_token": acc.refresh_token}
    first = token_request(srv, {**grant, "client_id": acc.client_id})  # secret is optional
    second = token_request(srv, {**grant, "client_id": acc.client_id,
                                 "client_secret": acc.client_secret})  # fmt: skip
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    a, b = first.json(), second.json()
    assert a["instance_url"] == b["instance_url"] == srv.url
    assert a["access_token"] != b["access_token"]
    assert a["id"].endswith("/" + acc.alice_id)
    assert bulk2_create(srv, a["access_token"]).status_code == 200
    expired = {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    r = token_request(srv, {**grant, "refresh_token": acc.refresh_token + "x",
                            "client_id": acc.client_id})  # fmt: skip
    assert (r.status_code, r.json()) == (400, expired)
    # a refresh token works only through the app it was issued to
    r = token_request(srv, {**grant, "client_id": acc.bare_client_id})
    assert (r.status_code, r.json()) == (400, expired)
    r = token_request(srv, {**grant, "client_id": acc.client_id, "client_secret": "x"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


# ---- SOAP partner login -----------------------------------------------------------------------


def test_a06_a07_soap_login(srv: Server, acc: Accounts, org_id: str) -> None:
    r = soap_login(srv, acc.alice, acc.alice_password)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].lower().startswith("text/xml")
    # simple-salesforce looks these literal (unprefixed) tag names up with minidom
    dom = minidom.parseString(r.content)
    sid = dom.getElementsByTagName("sessionId")[0].firstChild.data  # type: ignore[union-attr]
    server_url = dom.getElementsByTagName("serverUrl")[0].firstChild.data  # type: ignore[union-attr]
    assert server_url == f"{srv.url}/services/Soap/u/{API}/{org_id[:15]}"
    assert sid.startswith(org_id[:15] + "!")
    root = ET.fromstring(r.content)
    result = root.find(f"{{{SOAP_ENV}}}Body/{{{PARTNER}}}loginResponse/{{{PARTNER}}}result")
    assert result is not None
    assert [c.tag.split("}")[1] for c in result] == [
        "metadataServerUrl", "passwordExpired", "sandbox", "serverUrl", "sessionId", "userId",
        "userInfo",
    ]  # fmt: skip
    fields = {c.tag.split("}")[1]: c.text for c in result}
    assert fields["metadataServerUrl"] == f"{srv.url}/services/Soap/m/{API}/{org_id[:15]}"
    assert fields["passwordExpired"] == "false"
    assert fields["userId"] == acc.alice_id
    info = {c.tag.split("}")[1]: c.text for c in result.find(f"{{{PARTNER}}}userInfo") or []}
    assert info["organizationId"] == org_id
    assert info["userName"] == acc.alice
    assert info["userFullName"] == "Alice Liddell"
    assert info["sessionSecondsValid"] == "7200"
    assert is_id(info["profileId"], "00e")
    # WSC derives the Bulk 1.0 root from serverUrl: up to /services/, then async/{ver}/
    bulk_root = server_url.split("/services/")[0] + f"/services/async/{API}/job"
    r = httpx.post(bulk_root, content=bulk1_body(), timeout=30,
                   headers={"X-SFDC-Session": sid, "Content-Type": "application/xml"})  # fmt: skip
    assert r.status_code == 201, r.text


def bulk1_body() -> str:
    return (
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert'
        "</operation><object>Contact</object><contentType>CSV</contentType></jobInfo>"
    )


def test_soap_login_any_prefix_and_server_url_endpoint(
    srv: Server, acc: Accounts, org_id: str
) -> None:
    # jsforce: `se:` envelope, login in the default namespace, SOAPAction ""
    body = (
        f'<se:Envelope xmlns:se="{SOAP_ENV}"><se:Header/><se:Body>'
        f'<login xmlns="{PARTNER}"><username>{acc.bob}</username>'
        f"<password>{acc.bob_password}</password></login></se:Body></se:Envelope>"
    )
    for path in (f"/services/Soap/u/{API}", f"/services/Soap/u/{API}/{org_id[:15]}"):
        r = httpx.post(srv.url + path, content=body, timeout=30,
                       headers={"Content-Type": "text/xml", "SOAPAction": '""'})  # fmt: skip
        assert r.status_code == 200, r.text
        assert "<sessionId>" in r.text


def test_a08_soap_login_fault(srv: Server, acc: Accounts) -> None:
    for username, password in [(acc.alice, "wrong"), ("nobody@example.com", "x")]:
        r = soap_login(srv, username, password)
        assert r.status_code == 500
        assert r.headers["content-type"].lower().startswith("text/xml")
        # simple-salesforce reads the prefixed names literally; jsforce reads faultstring
        dom = minidom.parseString(r.content)
        code = dom.getElementsByTagName("sf:exceptionCode")[0].firstChild.data  # type: ignore[union-attr]
        msg = dom.getElementsByTagName("sf:exceptionMessage")[0].firstChild.data  # type: ignore[union-attr]
        assert code == "INVALID_LOGIN"
        assert msg == "Invalid username, password, security token; or user locked out."
        root = ET.fromstring(r.content)
        fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
        assert fault is not None
        assert fault.findtext("faultcode") == "sf:INVALID_LOGIN"
        assert fault.findtext("faultstring") == f"INVALID_LOGIN: {msg}"
        assert fault.find(f"detail/{{{FAULT_NS}}}LoginFault") is not None


def test_soap_rejects_garbage_and_unknown_versions(srv: Server, acc: Accounts) -> None:
    r = httpx.post(f"{srv.url}/services/Soap/u/{API}", content=b"<not-soap", timeout=30)
    assert r.status_code == 500 and "<faultcode>sf:" in r.text
    r = soap_login(srv, acc.bob, acc.bob_password, version="20.0")
    assert r.status_code == 500 and "UNSUPPORTED_API_VERSION" in r.text


# ---- using the tokens -------------------------------------------------------------------------


def test_a09_tokens_work_on_both_apis(srv: Server, acc: Accounts) -> None:
    soap = session_id(soap_login(srv, acc.alice, acc.alice_password))
    oauth = oauth_token(srv, acc)
    for token in (soap, oauth):
        r = bulk2_create(srv, token)
        assert r.status_code == 200, r.text
        assert r.json()["createdById"] == acc.alice_id
        r = bulk1_create(srv, token)
        assert r.status_code == 201, r.text
        assert f"<createdById>{acc.alice_id}</createdById>" in r.text
        r = httpx.get(srv.ingest_url, headers={"Authorization": f"OAuth {token}"}, timeout=30)
        assert r.status_code == 200
        r = bulk1_create(srv, f"Bearer {token}")  # a Bearer prefix in X-SFDC-Session
        assert r.status_code == 201, r.text


def test_a10_session_header_case_insensitive(srv: Server, acc: Accounts) -> None:
    token = session_id(soap_login(srv, acc.bob, acc.bob_password))
    for header in ("X-SFDC-SESSION", "x-sfdc-session"):
        r = bulk1_create(srv, token, header=header)
        assert r.status_code == 201, r.text


def test_created_by_is_the_calling_user(srv: Server, acc: Accounts) -> None:
    bob_token = oauth_token_for(srv, acc, acc.bob, acc.bob_password)
    bob_job = bulk2_create(srv, bob_token).json()
    alice_job = bulk2_create(srv, oauth_token(srv, acc)).json()
    admin_job = bulk2_create(srv, srv.token).json()  # the fixed --token: the org's admin user
    assert bob_job["createdById"] != alice_job["createdById"] == acc.alice_id
    assert admin_job["createdById"] not in (bob_job["createdById"], acc.alice_id)
    assert is_id(bob_job["createdById"], "005") and is_id(admin_job["createdById"], "005")
    # and the jobs read back with the same creator
    r = httpx.get(f"{srv.ingest_url}/{bob_job['id']}", headers=srv.headers(), timeout=30)
    assert r.json()["createdById"] == bob_job["createdById"]


def oauth_token_for(srv: Server, acc: Accounts, username: str, password: str) -> str:
    r = password_grant(srv, acc, username, password)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def test_userinfo_and_identity_url(srv: Server, acc: Accounts, org_id: str) -> None:
    body = password_grant(srv, acc, acc.alice, acc.alice_password).json()
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    r = httpx.get(f"{srv.url}/services/oauth2/userinfo", headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["user_id"] == acc.alice_id
    assert info["organization_id"] == org_id
    assert info["preferred_username"] == acc.alice
    assert info["name"] == "Alice Liddell"
    assert info["sub"] == body["id"]
    r = httpx.get(body["id"], headers=auth, timeout=30)  # the identity URL itself
    assert r.status_code == 200 and r.json()["user_id"] == acc.alice_id
    assert {"partner", "rest", "sobjects", "limits"} <= info["urls"].keys()
    for name, url in info["urls"].items():  # every advertised URL answers (issue #13)
        if name != "partner":  # SOAP login answers POST only
            assert httpx.get(url, headers=auth, timeout=30).status_code != 404, (name, url)
    r = httpx.get(f"{srv.url}/services/oauth2/userinfo", timeout=30)
    assert (r.status_code, r.json()) == (401, INVALID_SESSION_2)


def test_revoke_access_token(srv: Server, acc: Accounts) -> None:
    token = oauth_token(srv, acc)
    assert bulk2_create(srv, token).status_code == 200
    r = httpx.post(f"{srv.url}/services/oauth2/revoke", data={"token": token}, timeout=30)
    assert r.status_code == 200
    r = bulk2_create(srv, token)
    assert (r.status_code, r.json()) == (401, INVALID_SESSION_2)
    r = bulk1_create(srv, token)
    assert r.status_code == 400
    assert "<exceptionCode>InvalidSessionId</exceptionCode>" in r.text
    # revoking again, or something that never was a token
    for bogus in (token, "nonsense", srv.token):
        r = httpx.post(f"{srv.url}/services/oauth2/revoke", data={"token": bogus}, timeout=30)
        assert r.status_code == 400
        assert r.json()["error"] == "unsupported_token_type"
    assert bulk2_create(srv, srv.token).status_code == 200  # the fixed token is not revocable


def test_revoke_refresh_token_ends_its_sessions(srv: Server, acc: Accounts) -> None:
    refresh = printed_refresh_token(srv, acc)
    grant = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": acc.client_id}
    access = token_request(srv, grant).json()["access_token"]
    assert bulk2_create(srv, access).status_code == 200
    r = httpx.get(f"{srv.url}/services/oauth2/revoke", params={"token": refresh}, timeout=30)
    assert r.status_code == 200
    assert token_request(srv, grant).json() == {
        "error": "invalid_grant", "error_description": "expired access/refresh token"
    }  # fmt: skip
    assert bulk2_create(srv, access).status_code == 401


def printed_refresh_token(srv: Server, acc: Accounts) -> str:
    from auth_helpers import bulkforce, printed

    out = bulkforce(srv.data_dir, "app", "token", acc.client_id, acc.bob).stdout
    return printed(out, "refresh_token")


# ---- the REST root ----------------------------------------------------------------------------


def test_version_list_needs_no_token(srv: Server) -> None:
    for path in ("/services/data", "/services/data/"):
        r = httpx.get(srv.url + path, timeout=30)
        assert r.status_code == 200, r.text
        versions = r.json()
        assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
        assert [v["version"] for v in versions] == [f"{n}.0" for n in range(31, 67)]


def test_resource_map(srv: Server, acc: Accounts, org_id: str) -> None:
    token = oauth_token(srv, acc)
    for path in (f"/services/data/v{API}", f"/services/data/v{API}/"):
        r = httpx.get(srv.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200, r.text
        res = r.json()
        assert res["sobjects"] == f"/services/data/v{API}/sobjects"
        assert res["identity"] == f"{srv.url}/id/{org_id}/{acc.alice_id}"
        assert res["jobs"] == f"/services/data/v{API}/jobs"
        # only what answers: no advertised resource is a 404 (issue #13); `jobs` is the root
        # of the Bulk 2.0 resources, as in Salesforce's map
        assert "tooling" not in res
        for name, url in res.items():
            target = url if url.startswith("http") else srv.url + url
            target += "/ingest" if name == "jobs" else ""
            got = httpx.get(target, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert got.status_code != 404, (name, url, got.text)
    r = httpx.get(f"{srv.url}/services/data/v{API}/", timeout=30)
    assert (r.status_code, r.json()) == (401, INVALID_SESSION_2)
    r = httpx.get(f"{srv.url}/services/data/v12.0/", headers=srv.headers(), timeout=30)
    assert r.status_code == 410  # a retired version
    r = httpx.get(f"{srv.url}/services/data/v67.0/", headers=srv.headers(), timeout=30)
    assert r.status_code == 404
