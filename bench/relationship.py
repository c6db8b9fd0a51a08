"""Child upsert with an Account.External_Id__c relationship column (`python -m bench.ingest
--relationship`): records/s of relationship resolution."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.bulk2 import check, wait_complete
from bench.common import (
    EXT_ID,
    TOKEN,
)
from bench.pg import (
    PgDatabases,
    is_postgres,
)
from bench.procs import BenchError, Server
from bench.raw_sqlite import (
    sqlite_path,
)
from bench.report import rate, say

RELATIONSHIP_SCHEMA = {
    "sobjects": [
        {"name": name, "fields": [{"name": EXT_ID, "type": "string", "length": 80,
                                   "externalId": True, "unique": True}]}
        for name in ("Account", "Contact")
    ]
}  # fmt: skip


def relationship_job(
    client: httpx.Client, obj: str, operation: str, body: bytes, timeout: float
) -> tuple[float, Any]:
    """One Bulk 2.0 job, create to JobComplete: (seconds, final job info)."""
    spec = {"object": obj, "operation": operation, "contentType": "CSV"}
    if operation == "upsert":
        spec["externalIdFieldName"] = EXT_ID
    t0 = time.perf_counter()
    r = client.post("", json=spec)
    check(r, 200, f"create {obj} {operation} job")
    job_id = r.json()["id"]
    r = client.put(f"/{job_id}/batches", content=body, headers={"Content-Type": "text/csv"})
    check(r, 201, f"upload to {job_id}")
    check(client.patch(f"/{job_id}", json={"state": "UploadComplete"}), 200, f"close {job_id}")
    info = wait_complete(client, job_id, 0.02, timeout)
    return time.perf_counter() - t0, info


def relationship_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        description="Child upsert with an Account.External_Id__c relationship column."
    )
    p.add_argument("--rows", type=int, default=100_000, help="accounts and contacts (100k)")
    p.add_argument("--database", help="sqlite:///FILE, or postgresql://.../ADMIN_DB (a fresh DB)")
    p.add_argument("--work-dir", type=Path, help="parent of the temp dir (default: system tmp)")
    p.add_argument("--job-timeout", type=float, default=3600, help="max seconds per job")
    p.add_argument("--seed", type=int, default=20240501, help="data generator seed")
    args = p.parse_args(argv)
    n = args.rows
    work = Path(tempfile.mkdtemp(prefix="bulkforce-bench-rel-", dir=args.work_dir))
    schema = work / "schema.json"
    schema.write_text(json.dumps(RELATIONSHIP_SCHEMA))
    dbs = PgDatabases(args.database) if is_postgres(args.database) else None
    database = dbs.create()[1] if dbs is not None else args.database
    server = Server(work / "data", schema, database, [], work / "server.log")
    rng = random.Random(args.seed)
    parents = [f"ACC{i:08d}" for i in range(n)]
    rng.shuffle(parents)  # random index order, as real keys arrive
    accounts = "Name,External_Id__c\n" + "".join(f"Account {k},{k}\n" for k in parents)
    links = [rng.randrange(n) for _ in range(n)]
    contacts = "External_Id__c,LastName,Account.External_Id__c\n" + "".join(
        f"CON{i:08d},Child {i},{parents[j]}\n" for i, j in enumerate(links)
    )
    status = 0
    try:
        server.start(60)
        with httpx.Client(
            base_url=server.ingest_url, headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=1800,
        ) as client:  # fmt: skip
            secs, info = relationship_job(client, "Account", "insert", accounts.encode(), 3600)
            say(f"parents: {n:,} Account inserts in {secs:.1f}s ({rate(n, secs):,.0f} rec/s)")
            for label in ("child upsert (all inserts)", "child upsert (all updates)"):
                secs, info = relationship_job(
                    client, "Contact", "upsert", contacts.encode(), args.job_timeout
                )
                failed = int(info["numberRecordsFailed"])
                say(f"{label}: {n:,} Contacts with Account.External_Id__c in {secs:.1f}s "
                    f"({rate(n, secs):,.0f} rec/s), {failed} failed")  # fmt: skip
                if failed:
                    status = 1
        db = None if dbs is not None else sqlite_path(args.database, work / "data")
        if db is not None:
            expected = {f"CON{i:08d}": parents[j] for i, j in enumerate(links)}
            with sqlite3.connect(db) as con:
                got = dict(
                    con.execute(
                        'SELECT c."External_Id__c", a."External_Id__c" FROM "Contact" c '
                        'JOIN "Account" a ON a."Id" = c."AccountId"'
                    )
                )
            wrong = sum(got.get(k) != v for k, v in expected.items())
            say(f"contacts whose AccountId is not the named parent: {wrong}")
            status = status or (1 if wrong else 0)
    except (BenchError, httpx.HTTPError) as exc:
        say(f"ERROR: {exc}")
        say(server.log_tail())
        status = 1
    finally:
        say(f"server {server.stop()}")
        if dbs is not None:
            dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    return status
