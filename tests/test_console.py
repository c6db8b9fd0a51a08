"""The web console in a real browser (Debian's Chromium through Playwright) against a real
server on SQLite and PostgreSQL: sign-in, live job list and job page, failures by error code,
downloads equal to the API's bytes, abort, delete, objects, reset, escaping, sign-out."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import bulkforce
from bulk2_helpers import BASE, create, patch, put, run_job
from conftest import API, Server, unique
from console_helpers import shot, sign_in, sign_in_user

expect: Any
try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests and says why
    expect = None


def test_pages_need_sign_in_and_token_sign_in_works(page: Any, server: Server) -> None:
    r = httpx.get(server.url + "/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    for path in ("/objects", "/admin", "/jobs/table"):
        assert httpx.get(server.url + path).status_code in (303, 401), path
    page.goto(server.url + "/objects")
    assert "/login" in page.url
    shot(page, "login", server)
    page.fill("#token", server.token + "x")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_contain_text("Wrong token")
    page.fill("#token", server.token)
    page.click("#sign-in")
    expect(page.locator("h1")).to_have_text("Objects")  # back where the user was going
    cookie = next(c for c in page.context.cookies() if c["name"] == "bf_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    assert server.token not in cookie["value"]
    # authenticated pages: a CSP, never cached, and no token in any URL
    r = httpx.get(server.url + "/", cookies={"bf_console": cookie["value"]})
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert server.token not in r.text and server.token not in page.url


def test_sign_out_ends_the_session_even_for_a_copied_cookie(page: Any, server: Server) -> None:
    sign_in(page, server)
    value = next(c["value"] for c in page.context.cookies() if c["name"] == "bf_console")
    assert httpx.get(server.url + "/", cookies={"bf_console": value}).status_code == 200
    page.click("#sign-out")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(server.url + "/")
    assert "/login" in page.url
    r = httpx.get(server.url + "/", cookies={"bf_console": value}, follow_redirects=False)
    assert r.status_code == 303  # the copied cookie is dead too


def test_forms_need_the_csrf_token(page: Any, server: Server) -> None:
    sign_in(page, server)
    value = next(c["value"] for c in page.context.cookies() if c["name"] == "bf_console")
    with server.client() as c:
        job = create(c, "Contact", "insert")
    r = httpx.post(
        f"{server.url}/jobs/{job['id']}/abort", data={"csrf": "forged"},
        cookies={"bf_console": value},
    )  # fmt: skip
    assert r.status_code == 400 and "expired" in r.text
    with server.client() as c:
        assert c.get(f"{BASE}/{job['id']}").json()["state"] == "Open"
        patch(c, job["id"], "Aborted")


def test_job_made_through_the_api_appears_and_completes_without_reload(
    page: Any, server: Server
) -> None:
    # The page's own timers, on a clock the test moves on: waiting out the list's refresh
    # intervals (5 s idle, 1.5 s while a job runs) in real time took ~12 s.
    page.clock.install()
    sign_in(page, server)
    page.evaluate("window.__sameDocument = true")
    name = unique("live")
    rows = "LastName\n" + "".join(f"{name}{i}\n" for i in range(3000))
    with server.client() as c:
        job = create(c, "Contact", "insert")
        row = page.locator(f"tr[data-job='{job['id']}']")
        page.clock.fast_forward(5_000)
        expect(row).to_be_visible()  # appears: the list watches for new jobs
        expect(row).to_contain_text("Open")
        assert put(c, job["id"], rows).status_code == 201
        assert patch(c, job["id"], "UploadComplete").status_code == 200
    state = row.locator(".state")
    deadline = time.monotonic() + 30
    while state.inner_text() != "JobComplete" and time.monotonic() < deadline:
        page.clock.fast_forward(5_000)  # the next refresh, whichever interval it waits
        time.sleep(0.2)
    expect(state).to_have_text("JobComplete")
    expect(row.locator("td").nth(5)).to_have_text("3000")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    shot(page, "jobs", server)


def test_jobs_list_filters(page: Any, server: Server) -> None:
    with server.client() as c:
        done = run_job(c, "Account", "insert", f"Name\n{unique('f')}\n")
        opened = create(c, "Widget__c", "insert")
    sign_in(page, server)
    page.goto(f"{server.url}/?api=V2Ingest&state=JobComplete&object=account&operation=insert")
    expect(page.locator(f"tr[data-job='{done['id']}']")).to_be_visible()
    expect(page.locator(f"tr[data-job='{opened['id']}']")).to_have_count(0)
    page.goto(f"{server.url}/?api=Classic")
    expect(page.locator(f"tr[data-job='{done['id']}']")).to_have_count(0)
    with server.client() as c:
        patch(c, opened["id"], "Aborted")


def _mixed_job(c: httpx.Client) -> dict[str, Any]:
    """3 good rows, 4 without LastName, 2 with a LastName over 80 characters."""
    tag = unique("m")
    lines = ["FirstName,LastName"]
    lines += [f"ok{i},{tag}{i}" for i in range(3)]
    lines += [f"nolast{i}," for i in range(4)]
    lines += [f"long{i},{'x' * 81}" for i in range(2)]
    return run_job(c, "Contact", "insert", "\n".join(lines) + "\n")


def test_job_page_shows_failures_by_code_and_downloads_equal_the_api(
    page: Any, server: Server
) -> None:
    with server.client() as c:
        info = _mixed_job(c)
        assert info["numberRecordsFailed"] == 6
        api_bytes = {
            kind: c.get(f"{BASE}/{info['id']}/{path}").content
            for kind, path in (("success", "successfulResults"), ("failed", "failedResults"),
                               ("unprocessed", "unprocessedrecords"))
        }  # fmt: skip
    sign_in(page, server)
    page.goto(f"{server.url}/jobs/{info['id']}")
    expect(page.locator("#job-state")).to_have_text("JobComplete")
    groups = page.locator("#failures details.failure")
    expect(groups).to_have_count(2)
    assert groups.nth(0).get_attribute("data-code") == "REQUIRED_FIELD_MISSING"
    expect(groups.nth(0).locator(".count")).to_have_text("4")
    assert groups.nth(1).get_attribute("data-code") == "STRING_TOO_LONG"
    expect(groups.nth(1).locator(".count")).to_have_text("2")
    expect(groups.nth(0).locator("tbody tr")).to_have_count(4)
    expect(groups.nth(0)).to_contain_text("nolast0")
    # every JobInfo field, the state changes in order, a full progress bar
    fields = page.locator("#fields")
    for name in ("id", "operation", "object", "createdById", "createdDate", "systemModstamp",
                 "state", "concurrencyMode", "contentType", "apiVersion", "jobType",
                 "lineEnding", "columnDelimiter", "numberRecordsProcessed",
                 "numberRecordsFailed", "retries", "totalProcessingTime",
                 "apiActiveProcessingTime", "apexProcessingTime"):  # fmt: skip
        expect(fields.locator("th", has_text=re.compile(f"^{name}$"))).to_have_count(1)
    states = page.locator("#history td:first-child").all_text_contents()
    assert states == ["Open", "UploadComplete", "InProgress", "JobComplete"], states
    assert page.locator("#progress progress").get_attribute("value") == "100"
    shot(page, "job", server)
    for kind in ("success", "failed", "unprocessed"):
        with page.expect_download() as dl:
            page.click(f"#dl-{kind}")
        assert Path(dl.value.path()).read_bytes() == api_bytes[kind], kind


def test_abort_and_delete_from_the_page_with_confirmation(page: Any, server: Server) -> None:
    with server.client() as c:
        job = create(c, "Contact", "insert")
    sign_in(page, server)
    page.goto(f"{server.url}/jobs/{job['id']}")
    page.click("#abort")
    expect(page.locator("h1")).to_have_text(f"Abort job {job['id']}?")
    shot(page, "confirm-abort", server)
    page.click("#cancel")  # cancelling changes nothing
    expect(page.locator("#job-state")).to_have_text("Open")
    page.click("#abort")
    page.click("#confirm")
    expect(page.locator("#job-state")).to_have_text("Aborted")
    with server.client() as c:
        assert c.get(f"{BASE}/{job['id']}").json()["state"] == "Aborted"
    assert "Aborted" in page.locator("#history").inner_text()
    page.click("#delete")
    page.click("#confirm")
    page.wait_for_url(server.url + "/")
    with server.client() as c:
        assert c.get(f"{BASE}/{job['id']}").status_code == 404


def test_bulk1_job_page_lists_batches(page: Any, server: Server) -> None:
    headers = {"X-SFDC-Session": server.token, "Content-Type": "application/json"}
    base = f"{server.url}/services/async/{API}"
    r = httpx.post(f"{base}/job", headers=headers, json={
        "operation": "insert", "object": "Contact", "contentType": "CSV"})  # fmt: skip
    job_id = r.json()["id"]
    csv_headers = {**headers, "Content-Type": "text/csv"}
    body = f"LastName,FirstName\n{unique('b1')},ok\n,nolast\n".encode()
    r = httpx.post(f"{base}/job/{job_id}/batch", headers=csv_headers, content=body)
    batch = {"id": re.search(r"<id>(\w+)</id>", r.text)[1]}  # type: ignore[index]
    sign_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}")
    row = page.locator(f"tr[data-batch='{batch['id']}']")
    expect(row.locator(".state")).to_have_text(re.compile("Completed|Failed"), timeout=30_000)
    expect(page.locator("#fields")).to_contain_text("numberBatchesTotal")
    group = page.locator("#failures details.failure")  # from the batch's result and request
    expect(group).to_have_count(1)
    assert group.get_attribute("data-code") == "REQUIRED_FIELD_MISSING"
    expect(group.locator(".count")).to_have_text("1")
    expect(group.locator("tbody tr")).to_contain_text("nolast")
    with page.expect_download() as dl:
        row.get_by_text("request").click()
    assert Path(dl.value.path()).read_bytes() == body
    shot(page, "job-bulk1", server)
    httpx.post(f"{base}/job/{job_id}", headers=headers, json={"state": "Closed"})


def test_objects_records_paging_sorting_and_lookup(page: Any, server: Server) -> None:
    tag, sku = unique("o"), f"s{time.time_ns() % 10**12}"  # Sku__c holds 20 characters
    with server.client() as c:
        rows = "".join(f"{tag}-{i:03d},{sku}-{i:03d}\n" for i in range(60))
        assert run_job(c, "Widget__c", "insert", "Name,Sku__c\n" + rows)["numberRecordsFailed"] == 0
        run_job(c, "Widget__c", "insert", f"Name\n<script>alert(1)</script>{tag}\n")
    sign_in(page, server)
    page.goto(server.url + "/objects")
    widget = page.locator("tr[data-object='Widget__c']")
    assert int(widget.locator(".rows").inner_text()) >= 61
    shot(page, "objects", server)
    widget.get_by_role("link").click()
    expect(page.locator("#schema")).to_contain_text("Sku__c")
    page.goto(f"{server.url}/objects/Widget__c?sort=Name&dir=desc")
    expect(page.locator("#records tbody tr")).to_have_count(50)
    expect(page.locator("#next")).to_be_visible()
    page.select_option("#lookup-field", "Sku__c")
    page.fill("#lookup-value", f"{sku}-007")
    page.click("#lookup button")
    expect(page.locator("#records tbody tr")).to_have_count(1)
    expect(page.locator("#records")).to_contain_text(f"{tag}-007")
    shot(page, "object", server)
    record_id = page.locator("#records tbody tr td").first.inner_text()
    page.goto(f"{server.url}/objects/Widget__c?field=Id&find={record_id[:15]}")
    expect(page.locator("#records tbody tr")).to_have_count(1)
    # the injected value shows as text and runs nothing (the page fixture fails on a dialog)
    page.goto(f"{server.url}/objects/Widget__c?sort=Name&dir=asc")
    cell = page.locator("#records td", has_text=f"<script>alert(1)</script>{tag}")
    expect(cell).to_have_count(1)
    assert page.locator("#records script").count() == 0


def test_reset_from_the_admin_page(page: Any, server: Server) -> None:
    with server.client() as c:
        run_job(c, "Account", "insert", f"Name\n{unique('r')}\n{unique('r')}\n")
    sign_in(page, server)
    page.goto(server.url + "/admin")
    page.select_option("#reset-object", "Account")
    page.click("#reset")
    expect(page.locator("h1")).to_have_text("Reset data?")
    page.click("#confirm")
    expect(page.locator("#reset-done")).to_contain_text("Account")
    shot(page, "admin", server)
    with server.db() as db:
        assert db.execute('SELECT count(*) FROM "Account"').fetchone()[0] == 0


def test_quotes_in_an_object_label_render_as_text(
    page: Any, make_server: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    schema = tmp_path / "quoted.json"
    label = "He said \"hi\" <b>bold</b> & 'x'"
    schema.write_text(json.dumps({"name": "Quoted__c", "label": label, "fields": [
        {"name": "Note__c", "type": "string", "length": 80}]}))  # fmt: skip
    srv = make_server("--schema", str(schema))
    sign_in(page, srv)
    page.goto(srv.url + "/objects")
    cell = page.locator("tr[data-object='Quoted__c'] .label")
    expect(cell).to_have_text(label)
    assert cell.locator("b").count() == 0
    page.goto(srv.url + "/objects/Quoted__c")
    expect(page.locator("h1 .label")).to_have_text(label)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_user_sign_in_and_only_admins_reset(page: Any, make_server: Any, backend: str) -> None:
    srv = make_server(backend=backend)
    db = ["--database", srv.pg_url] if srv.pg_url else []
    user = f"ada{time.time_ns()}@example.com"
    bulkforce(srv.data_dir, "user", "add", user, "--password", "s3cret!", "--insecure-fast-hash",
              *db)  # fmt: skip
    sign_in_user(page, srv, user, "wrong")
    expect(page.locator("#login-error")).to_be_visible()
    sign_in_user(page, srv, user, "s3cret!")
    expect(page.locator("#who")).to_have_text(user)
    expect(page.locator("nav a", has_text="Admin")).to_have_count(0)
    # a user sees their own jobs only, as in the API (issue #9)
    with srv.client() as c:
        admins = create(c, "Contact", "insert")
    page.goto(srv.url + "/")
    expect(page.locator(f"tr[data-job='{admins['id']}']")).to_have_count(0)
    page.goto(f"{srv.url}/jobs/{admins['id']}")
    expect(page.locator("#error")).to_have_text("The requested resource does not exist")
    page.goto(srv.url + "/admin")
    expect(page.locator("#error")).to_contain_text("needs an admin user")


def test_soql_box_runs_the_rest_query_resource(page: Any, server: Server) -> None:
    tag = unique("q")
    with server.client() as c:
        rows = "".join(f"{tag}-{i:03d}\n" for i in range(250))
        assert run_job(c, "Widget__c", "insert", "Name\n" + rows)["numberRecordsFailed"] == 0
        run_job(c, "Widget__c", "insert", f"Name\n<b>{tag}</b>\n")
    sign_in(page, server)
    page.goto(server.url + "/objects")
    page.fill("#soql-text", f"SELECT Name FROM Widget__c WHERE Name LIKE '{tag}%' ORDER BY Name")
    page.click("#soql-run")
    expect(page.locator("#query-total")).to_contain_text("250 records")
    expect(page.locator("#query-results tbody tr")).to_have_count(200)  # one REST page
    expect(page.locator("#query-results tbody tr").first).to_have_text(f"{tag}-000")
    shot(page, "query", server)
    page.click("#query-next")
    expect(page.locator("#query-results tbody tr")).to_have_count(50)
    expect(page.locator("#query-results tbody tr").last).to_have_text(f"{tag}-249")
    page.fill("#soql-text", f"SELECT Name FROM Widget__c WHERE Name = '<b>{tag}</b>'")
    page.click("#soql-run")
    expect(page.locator("#query-results td")).to_have_text(f"<b>{tag}</b>")  # as text
    page.fill("#soql-text", "SELEC Name FROM Widget__c")
    page.click("#soql-run")
    expect(page.locator("#query-error")).to_contain_text("MALFORMED_QUERY")


def test_query_job_page_and_results_download(page: Any, server: Server) -> None:
    tag = unique("qj")
    with server.client() as c:
        run_job(c, "Account", "insert", f"Name\n{tag}-1\n{tag}-2\n")
        soql = f"SELECT Id, Name FROM Account WHERE Name LIKE '{tag}%' ORDER BY Name"
        r = c.post(f"/services/data/v{API}/jobs/query", json={"operation": "query", "query": soql})
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while c.get(f"/services/data/v{API}/jobs/query/{job_id}").json()["state"] != "JobComplete":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        api_bytes = c.get(f"/services/data/v{API}/jobs/query/{job_id}/results").content
    sign_in(page, server)
    page.goto(server.url + "/?api=V2Query")
    expect(page.locator(f"tr[data-job='{job_id}']")).to_contain_text("Bulk 2.0 query")
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(page.locator("#job-state")).to_have_text("JobComplete")
    expect(page.locator("#job-query")).to_have_text(soql)
    expect(page.locator("#fields")).to_contain_text("isPkChunkingSupported")
    shot(page, "job-query", server)
    with page.expect_download() as dl:
        page.click("#dl-query")
    assert Path(dl.value.path()).read_bytes() == api_bytes
    assert f"{tag}-2".encode() in api_bytes


def test_failed_job_shows_its_error_message(page: Any, server: Server) -> None:
    with server.client() as c:
        info = run_job(c, "Contact", "insert", "LastName,NoSuchField__c\nx,y\n")
    assert info["state"] == "Failed"
    sign_in(page, server)
    page.goto(f"{server.url}/jobs/{info['id']}")
    expect(page.locator("#job-state")).to_have_text("Failed")
    expect(page.locator("#error-message")).to_have_text(info["errorMessage"])
    assert "NoSuchField__c" in info["errorMessage"]


def test_session_cookie_is_secure_under_tls(make_server: Any) -> None:
    srv = make_server("--tls", start=False)
    srv.scheme = "https"
    srv.start()
    with httpx.Client(base_url=srv.url, verify=srv.verify) as c:
        form = c.get("/login")
        csrf = re.search(r'name="csrf" value="(\w+)"', form.text)[1]  # type: ignore[index]
        r = c.post("/login", data={"csrf": csrf, "token": srv.token})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("bf_console=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
