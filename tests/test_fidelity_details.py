"""Issue #9 item 18: small wire details where bulkforce answered differently from Salesforce."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote

import httpx
import pytest
from bulk1_helpers import (
    UNABLE_TO_PARSE,
    add_batch,
    b1_client,
    create_job,
    job_body,
    post_job,
    read_job,
    wait_batch,
)
from bulk1_helpers import assert_error as assert_b1_error
from bulk2_helpers import assert_error, failed, upload_and_close
from conftest import API, Server, unique

# Versions 21.0 through 30.0 were retired in Summer '25 (7.0 through 20.0 earlier).
RETIRED = ["30.0", "21.0", "20.0"]


@pytest.mark.parametrize("ver", RETIRED)
def test_retired_rest_version_is_gone(http: httpx.Client, ver: str) -> None:
    """REST answers 410 for every resource of a retired version, not 404."""
    for path in ("/jobs/ingest", "/sobjects", "/sobjects/Contact/describe", "/limits", ""):
        r = http.get(f"/services/data/v{ver}{path}")
        assert_error(r, 410, "UNSUPPORTED_API_VERSION")
    # a version that never existed is still unknown, and a supported one works
    assert_error(http.get("/services/data/v99.0/sobjects"), 404, "NOT_FOUND")
    assert http.get("/services/data/v31.0/sobjects").status_code == 200


def test_bulk1_retired_version_is_invalid_version(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers={"X-SFDC-Session": server.token}) as b1:
        r = b1.post("/services/async/30.0/job", content=job_body("xml", _job("Contact")))
        assert_b1_error(r, 400, "InvalidVersion")


def _job(obj: str, content_type: str = "CSV") -> dict[str, str]:
    return {"operation": "insert", "object": obj, "contentType": content_type}


def _b1(server: Server, ver: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/services/async/{ver}",
        headers={"X-SFDC-Session": server.token},
        timeout=60,
    )


def test_bulk1_json_needs_version_36(server: Server) -> None:
    """JSON jobs and JSON request bodies exist from 36.0; 35.0 refuses both the way it refuses
    any value its schema does not know, and answers in XML (it has no JSON)."""
    with _b1(server, "35.0") as old:
        r = old.post("/job", content=job_body("xml", _job("Contact", "JSON")),
                     headers={"Content-Type": "application/xml"})  # fmt: skip
        assert_b1_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, "xml")
        r = old.post("/job", content=job_body("json", _job("Contact", "JSON")),
                     headers={"Content-Type": "application/json"})  # fmt: skip
        assert_b1_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, "xml")
        # CSV and XML jobs are fine at 35.0
        r = old.post("/job", content=job_body("xml", _job("Contact")),
                     headers={"Content-Type": "application/xml"})  # fmt: skip
        assert read_job(r, "xml", 201)["apiVersion"] == "35.0"
    with _b1(server, "36.0") as new:
        r = new.post("/job", content=job_body("json", _job("Contact", "JSON")),
                     headers={"Content-Type": "application/json"})  # fmt: skip
        assert read_job(r, "json", 201)["contentType"] == "JSON"


@pytest.mark.parametrize(("ver", "has_id"), [("52.0", False), ("53.0", True)])
def test_failed_results_sf_id_from_version_53(server: Server, ver: str, has_id: bool) -> None:
    """A failed update names its record in failedResults only from API 53.0 on."""
    with server.client() as c:
        base = f"/services/data/v{ver}/jobs/ingest"
        name = unique("fid")
        r = c.post(base, json={"object": "Contact", "operation": "insert"})
        job = upload_and_close(c, r.json()["id"], f"LastName\n{name}\n")
        assert job["numberRecordsFailed"] == 0, job
        rid = c.get(f"{base}/{job['id']}/successfulResults").text.splitlines()[1].split(",")[0]
        rid = rid.strip('"')
        r = c.post(base, json={"object": "Contact", "operation": "delete"})
        upload_and_close(c, r.json()["id"], f"Id\n{rid}\n")
        # updating the deleted record fails with its Id known
        r = c.post(base, json={"object": "Contact", "operation": "update"})
        job = upload_and_close(c, r.json()["id"], f"Id,LastName\n{rid},{name}x\n")
        assert job["numberRecordsFailed"] == 1, job
        row = c.get(f"{base}/{job['id']}/failedResults").text.splitlines()[1]
        assert row.startswith(f'"{rid}",' if has_id else '"",'), row
        assert "ENTITY_IS_DELETED" in row, row


def test_bulk1_xml_error_echoing_control_characters_is_well_formed(server: Server) -> None:
    """An error message that echoes a control character from the request stays readable XML."""
    with _b1(server, API) as b1:
        r = b1.get("/job/" + quote("750\x01\x1b\x7fzz"))
        message = assert_b1_error(r, 400, "InvalidJob", fmt="xml")
        assert "\x01" not in message and "\ufffd" in message, repr(message)
    # a batch whose header names a field with a control character
    with b1_client(server) as b1:
        job = create_job(b1, "Contact", "insert", "CSV")
        batch = add_batch(b1, job["id"], "LastName,Bad\x02Field\nx,y\n")
        info = wait_batch(b1, job["id"], batch["id"])
        assert info["state"] == "Failed", info
        assert "Field name not found" in info["stateMessage"], info
        result = b1.get(f"/services/async/{API}/job/{job['id']}/batch/{batch['id']}")
        ET.fromstring(result.content)  # well-formed


@pytest.mark.parametrize("digits", ["٥٩", "５９", "߅߉"])
def test_versions_in_non_ascii_digits_are_refused(server: Server, digits: str) -> None:
    ver = quote(f"{digits}.0")
    with server.client() as c:
        assert_error(c.get(f"/services/data/v{ver}/jobs/ingest"), 404, "NOT_FOUND")
        assert_error(c.get(f"/services/data/v{ver}/sobjects"), 404, "NOT_FOUND")
    with _b1(server, ver) as b1:
        r = b1.post("/job", content=job_body("xml", _job("Contact")),
                    headers={"Content-Type": "application/xml"})  # fmt: skip
        assert_b1_error(r, 400, "InvalidVersion")


@pytest.mark.parametrize("method", ["PROPFIND", "TRACE", "MKCOL"])
def test_unknown_methods_get_salesforce_shaped_405(server: Server, method: str) -> None:
    with server.client() as c:
        r = c.request(method, f"/services/data/v{API}/jobs/ingest")
        assert_error(r, 405, "METHOD_NOT_ALLOWED")
        assert method in r.json()[0]["message"]
    with _b1(server, API) as b1:
        r = b1.request(method, "/job")
        assert_b1_error(r, 405, "InvalidUrl", fmt="xml")


@pytest.mark.parametrize(
    "body", ["<jobInfo", "not xml at all", '<?xml version="1.0"?><jobInfo><a></jobInfo>']
)
def test_unparsable_jobinfo_is_invalid_job(server: Server, body: str) -> None:
    with b1_client(server) as b1:
        r = post_job(b1, body)
        assert_b1_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, "xml")


def test_record_url_with_fields_parameter(server: Server) -> None:
    """`?fields=` without Id still gives the record's own URL (18-character Id)."""
    with server.client() as c:
        name = unique("url")
        r = c.post(f"/services/data/v{API}/jobs/ingest", json={"object": "Contact",
                                                              "operation": "insert"})  # fmt: skip
        upload_and_close(c, r.json()["id"], f"LastName\n{name}\n")
        rows = failed(c, r.json()["id"], "LastName").rows
        assert rows == []
        text = c.get(f"/services/data/v{API}/jobs/ingest/{r.json()['id']}/successfulResults").text
        rid = text.splitlines()[1].split(",")[0].strip('"')
        for path_id in (rid, rid[:15]):
            got = c.get(f"/services/data/v{API}/sobjects/Contact/{path_id}?fields=LastName")
            assert got.status_code == 200, got.text
            body = got.json()
            assert body["attributes"] == {
                "type": "Contact",
                "url": f"/services/data/v{API}/sobjects/Contact/{rid}",
            }, body
            assert body["LastName"] == name
