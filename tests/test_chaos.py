"""Issue #4's chaos test: PostgreSQL, 2 API processes, 3 worker processes, 20 concurrent jobs
of 20,000 records (inserts and upserts), workers SIGKILLed at random while they run. Every job
must still end JobComplete with every record applied exactly once."""

from __future__ import annotations

import csv
import io
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API, PG_PROBLEM, TOKEN, Server, drop_pg_database, new_pg_database

SCHEMA = Path(__file__).parent / "data" / "test_schema.json"
JOBS, ROWS, KILLS = 20, 20_000, 5


def rows_csv(keys: list[str], tag: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["LastName", "Email", "External_Id__c"])
    for k in keys:
        w.writerow([f"{tag} {k}", f"{k.lower()}@example.com", k])
    return buf.getvalue().encode()


def run_job(url: str, operation: str, data: bytes) -> dict[str, Any]:
    base = f"{url}/services/data/v{API}/jobs/ingest"
    spec = {"object": "Contact", "operation": operation, "externalIdFieldName": "External_Id__c"}
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
        job = c.post(base, json=spec).json()
        assert c.put(f"{base}/{job['id']}/batches", content=data,
                     headers={"Content-Type": "text/csv"}).status_code == 201  # fmt: skip
        c.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"}).raise_for_status()
        deadline = time.monotonic() + 300
        while True:
            info: dict[str, Any] = c.get(f"{base}/{job['id']}").json()
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        # results may be read through the other API process: any process serves any job
        info["ok"] = list(
            csv.reader(io.StringIO(c.get(f"{base}/{job['id']}/successfulResults").text))
        )
        info["bad"] = c.get(f"{base}/{job['id']}/failedResults").text.splitlines()
    return info


class Workers:
    def __init__(self, pg_url: str, log_dir: Path) -> None:
        self.pg_url, self.log_dir = pg_url, log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.log_dir / f"worker-{self.started}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bulkforce", "worker", "--database", self.pg_url,
             "--schema", str(SCHEMA), "--lease-seconds", "3", "--commit-seconds", "0.2",
             "--data-dir", str(self.log_dir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.skipif(PG_PROBLEM is not None, reason=PG_PROBLEM or "")
def test_chaos_two_apis_three_workers_sigkill(tmp_path: Path) -> None:
    pg_url = new_pg_database()
    apis = [Server(tmp_path / f"api{i}", ["--schema", str(SCHEMA), "--no-worker"], pg_url=pg_url)
            for i in range(2)]  # fmt: skip
    workers = Workers(pg_url, tmp_path)
    try:
        for api in apis:
            api.start()
        for _ in range(3):
            workers.start()
        rng = random.Random(4)
        # Upsert jobs update 10,000 records loaded beforehand and insert 10,000 new ones.
        seed_keys = [f"CHS-U{j:02d}-{i:05d}" for j in range(JOBS // 2) for i in range(ROWS // 2)]
        seeded = run_job(apis[0].url, "insert", rows_csv(seed_keys, "seed"))
        assert seeded["state"] == "JobComplete" and seeded["numberRecordsFailed"] == 0, seeded
        plans = []
        for j in range(JOBS):
            if j % 2 == 0:
                keys = [f"CHS-I{j:02d}-{i:05d}" for i in range(ROWS)]
                plans.append(("insert", keys, ROWS))
            else:
                u = j // 2
                keys = [f"CHS-U{u:02d}-{i:05d}" for i in range(ROWS // 2)]
                keys += [f"CHS-N{u:02d}-{i:05d}" for i in range(ROWS // 2)]
                rng.shuffle(keys)
                plans.append(("upsert", keys, ROWS // 2))

        done = threading.Event()
        kills: list[int] = []

        def killer() -> None:
            while not done.wait(2.0) and len(kills) < KILLS:
                live = [p for p in workers.procs if p.poll() is None]
                victim = rng.choice(live)
                victim.send_signal(signal.SIGKILL)
                kills.append(victim.pid)
                workers.start()  # keep three running

        chaos = threading.Thread(target=killer)
        chaos.start()
        with ThreadPoolExecutor(max_workers=JOBS) as pool:
            futures = [
                pool.submit(run_job, apis[j % 2].url, op, rows_csv(keys, f"job{j}"))
                for j, (op, keys, _) in enumerate(plans)
            ]
            results = [f.result() for f in futures]
        done.set()
        chaos.join()
        assert len(kills) >= 2, "the chaos must actually kill workers while jobs run"

        all_ids: set[str] = set()
        for (op, keys, created), info in zip(plans, results, strict=True):
            assert info["state"] == "JobComplete", info
            assert info["numberRecordsProcessed"] == ROWS and info["numberRecordsFailed"] == 0, info
            header, *rows = info["ok"]
            assert header[:2] == ["sf__Id", "sf__Created"] and len(rows) == ROWS
            assert len(info["bad"]) <= 1  # header only
            assert sorted(r[-1] for r in rows) == sorted(keys)  # every record accounted for
            assert sum(r[1] == "true" for r in rows) == created, op
            all_ids.update(r[0] for r in rows)
        assert sum(r["retries"] for r in results) >= 1, "some job must have been retried"

        import psycopg

        expected = len(seed_keys) + sum(created for _, _, created in plans)
        with psycopg.connect(pg_url) as db:
            count, distinct = db.execute(
                "SELECT count(*), count(DISTINCT external_id__c) FROM contact "
                "WHERE external_id__c LIKE 'CHS-%'"
            ).fetchone()  # type: ignore[misc]
            stored = {
                r[0] for r in db.execute("SELECT id FROM contact WHERE external_id__c LIKE 'CHS-%'")
            }
        assert count == distinct == expected  # no duplicates, none missing
        assert all_ids <= stored
    finally:
        workers.stop()
        for api in apis:
            api.stop()
        drop_pg_database(pg_url)
