"""Issue #9 item 16, who may do what: only admins reset the org; a user sees and acts on their
own bulk jobs unless they have Manage Data Integrations (bulkforce/jobs/access.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from auth_helpers import session_id, soap_login
from bulk1_helpers import UNABLE_TO_PARSE, job_xml
from bulk1_helpers import assert_error as assert_b1_error
from bulk2_helpers import NOT_FOUND, assert_error
from conftest import API, BACKENDS, Server, unique

INGEST = f"/services/data/v{API}/jobs/ingest"
ASYNC = f"/services/async/{API}/job"
RESET = "/bulkforce/admin/reset"
INSUFFICIENT = "INSUFFICIENT_ACCESS"


def cli(server: Server, *args: str) -> str:
    """A `bulkforce` admin command against the server's store (SQLite file or PostgreSQL)."""
    db = ["--database", server.pg_url] if server.pg_url else []
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", *args, "--data-dir", str(server.data_dir), *db],
        capture_output=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@dataclass
class User:
    username: str
    id: str
    client: httpx.Client  # logged in (SOAP), token as Bearer and X-SFDC-Session


def add_user(server: Server, *roles: str) -> User:
    username = f"{unique('u').lower()}@example.com"
    out = cli(server, "user", "add", username, "--password", "pw-1", *roles,
              "--insecure-fast-hash")  # fmt: skip
    user_id = out.splitlines()[0].rsplit("id ", 1)[1].strip()
    r = soap_login(server, username, "pw-1")
    assert r.status_code == 200, r.text
    token = session_id(r)
    client = httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}", "X-SFDC-Session": token},
        timeout=60,
    )
    return User(username, user_id, client)


@pytest.fixture
def users(server: Server) -> dict[str, User]:
    made = {
        "alice": add_user(server),
        "bob": add_user(server),
        "integrations": add_user(server, "--manage-data-integrations"),
        "admin": add_user(server, "--admin"),
    }
    yield made  # type: ignore[misc]
    for u in made.values():
        u.client.close()


def create_v2(c: httpx.Client) -> dict[str, str]:
    r = c.post(INGEST, json={"object": "Contact", "operation": "insert"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def create_v1(c: httpx.Client) -> tuple[str, str]:
    """A Bulk 1.0 job with one batch: (job id, batch id)."""
    fields = {"operation": "insert", "object": "Contact", "contentType": "CSV"}
    r = c.post(ASYNC, content=job_xml(fields), headers={"Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    job_id = r.text.split("<id>", 1)[1].split("</id>", 1)[0]
    r = c.post(f"{ASYNC}/{job_id}/batch", content=f"LastName\n{unique('b')}\n",
               headers={"Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 201, r.text
    return job_id, r.text.split("<id>", 1)[1].split("</id>", 1)[0]


def listed(c: httpx.Client) -> set[str]:
    ids: set[str] = set()
    url: str | None = INGEST
    while url:
        r = c.get(url)
        assert r.status_code == 200, r.text
        ids |= {j["id"] for j in r.json()["records"]}
        url = r.json()["nextRecordsUrl"]
    return ids


def test_bulk2_jobs_of_another_user_do_not_exist_for_them(
    server: Server, users: dict[str, User]
) -> None:
    alice, bob = users["alice"].client, users["bob"].client
    job = create_v2(alice)
    url = f"{INGEST}/{job['id']}"
    assert job["createdById"] == users["alice"].id
    # bob: every call answers exactly as for a job that does not exist
    for r in (
        bob.get(url),
        bob.put(f"{url}/batches", content=b"LastName\nx\n", headers={"Content-Type": "text/csv"}),
        bob.patch(url, json={"state": "UploadComplete"}),
        bob.patch(url, json={"state": "Aborted"}),
        bob.delete(url),
        bob.get(f"{url}/successfulResults"),
        bob.get(f"{url}/failedResults"),
        bob.get(f"{url}/unprocessedrecords"),
    ):
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (r.request.method, r.text)
    assert job["id"] not in listed(bob)
    # nothing bob sent touched the job
    r = alice.get(url)
    assert r.status_code == 200 and r.json()["state"] == "Open", r.text
    assert job["id"] in listed(alice)
    mine = create_v2(bob)
    assert mine["id"] in listed(bob) and mine["id"] not in listed(alice)


@pytest.mark.parametrize("who", ["integrations", "admin", "token"])
def test_bulk2_manage_data_integrations_and_admins_act_on_every_job(
    server: Server, users: dict[str, User], who: str
) -> None:
    alice = users["alice"].client
    other = server.client() if who == "token" else users[who].client
    job = create_v2(alice)
    url = f"{INGEST}/{job['id']}"
    assert other.get(url).status_code == 200
    assert job["id"] in listed(other)
    r = other.patch(url, json={"state": "Aborted"})
    assert r.status_code == 200 and r.json()["state"] == "Aborted", r.text
    assert other.get(f"{url}/unprocessedrecords").status_code == 200
    assert other.delete(url).status_code == 204
    assert alice.get(url).status_code == 404


def test_bulk1_jobs_and_batches_of_another_user(server: Server, users: dict[str, User]) -> None:
    alice, bob = users["alice"].client, users["bob"].client
    job_id, batch_id = create_v1(alice)
    missing = f"Unable to find object: {job_id}"
    close = job_xml({"state": "Closed"})
    for r in (
        bob.get(f"{ASYNC}/{job_id}"),
        bob.post(f"{ASYNC}/{job_id}", content=close, headers={"Content-Type": "application/xml"}),
        bob.get(f"{ASYNC}/{job_id}/batch"),
        bob.post(f"{ASYNC}/{job_id}/batch", content=b"LastName\nx\n",
                 headers={"Content-Type": "text/csv"}),
        bob.get(f"{ASYNC}/{job_id}/batch/{batch_id}"),
        bob.get(f"{ASYNC}/{job_id}/batch/{batch_id}/request"),
        bob.get(f"{ASYNC}/{job_id}/batch/{batch_id}/result"),
    ):  # fmt: skip
        assert_b1_error(r, 400, "InvalidJob", missing)
    assert job_id not in listed(bob)
    r = alice.get(f"{ASYNC}/{job_id}")
    assert r.status_code == 200 and "<state>Open</state>" in r.text, r.text
    assert job_id in listed(alice)
    # Manage Data Integrations: sees the job and its batches, and may close it
    mdi = users["integrations"].client
    assert mdi.get(f"{ASYNC}/{job_id}/batch/{batch_id}/request").status_code == 200
    r = mdi.post(f"{ASYNC}/{job_id}", content=close, headers={"Content-Type": "application/xml"})
    assert r.status_code == 200 and "<state>Closed</state>" in r.text, r.text
    assert_b1_error(bob.post(ASYNC, content=b"<jobInfo"), 400, "InvalidJob", UNABLE_TO_PARSE)


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_admins_reset(make_server: Callable[..., Server], backend: str) -> None:
    srv = make_server(backend=backend)
    plain, mdi, admin = add_user(srv), add_user(srv, "--manage-data-integrations"), None
    with srv.client() as token:
        r = token.post(INGEST, json={"object": "Contact", "operation": "insert"})
        assert r.status_code == 200
        for who in (plain, mdi):
            r = who.client.post(RESET, json={"object": "User"})
            assert_error(r, 403, INSUFFICIENT)
            r = who.client.post(RESET)
            assert_error(r, 403, INSUFFICIENT)
        # the refused resets deleted nothing: the users are still there and can log in
        assert soap_login(srv, plain.username, "pw-1").status_code == 200
        assert (
            plain.client.get(f"/services/data/v{API}/sobjects/User/{plain.id}").status_code == 200
        )
        admin = add_user(srv, "--admin")
        r = admin.client.post(RESET, json={"object": "Contact"})
        assert (r.status_code, r.json()) == (200, {"deleted": {"Contact": 0}}), r.text
        r = token.post(RESET, json={"object": "Contact"})  # the --token admin
        assert r.status_code == 200, r.text
        # roles change at once, for sessions already open
        out = cli(srv, "user", "set", admin.username, "--no-admin")
        assert "no roles" in out, out
        assert_error(admin.client.post(RESET, json={"object": "Contact"}), 403, INSUFFICIENT)
        out = cli(srv, "user", "set", plain.username, "--admin")
        assert "admin" in out, out
        assert plain.client.post(RESET, json={"object": "Contact"}).status_code == 200
        listing = cli(srv, "user", "list")
        assert f"{plain.username}\t{plain.id}" in listing
        line = next(x for x in listing.splitlines() if x.startswith(mdi.username))
        assert "manage-data-integrations" in line and "admin" not in line.replace(
            "manage-data-integrations", ""
        )
    for u in (plain, mdi, admin):
        u.client.close()
