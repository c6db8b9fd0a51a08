"""Crash safety of REST writes: the server SIGKILLed while 200-record allOrNone collections
are being written leaves each request's records all there or not there at all, and every
request it acknowledged is there after the restart. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from bulk2_helpers import db_query
from conftest import API, BACKENDS, Server, unique

SCHEMA = Path(__file__).parent / "data" / "test_schema.json"
RECORDS = 200
SENDERS = 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_during_all_or_none_collections_leaves_all_or_none(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = make_server("--schema", str(SCHEMA), backend=backend)
    tag = unique("crash")
    numbers = itertools.count()
    acked: list[int] = []
    cut: list[int] = []  # requests whose connection the kill dropped
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=srv.url, headers=srv.headers(), timeout=30) as c:
            while not stop.is_set():
                k = next(numbers)
                records = [{"attributes": {"type": "Contact"}, "LastName": f"{tag}-{k}",
                            "FirstName": str(i)} for i in range(RECORDS)]  # fmt: skip
                try:
                    r = c.post(f"/services/data/v{API}/composite/sobjects",
                               json={"allOrNone": True, "records": records})  # fmt: skip
                except httpx.TransportError:
                    cut.append(k)
                    return
                assert r.status_code == 200 and all(x["success"] for x in r.json()), r.text
                acked.append(k)

    threads = [threading.Thread(target=send) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.05))
    srv.kill()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acked) >= 3 and cut, (acked, cut)

    srv2 = make_server("--schema", str(SCHEMA), data_dir=srv.data_dir, pg_url=srv.pg_url)
    rows = db_query(
        srv2,
        'SELECT "LastName", COUNT(*) AS n FROM "Contact" WHERE "LastName" LIKE ? '
        'GROUP BY "LastName"',
        (f"{tag}-%",),
    )
    counts = {r["LastName"]: r["n"] for r in rows}
    assert set(counts.values()) <= {RECORDS}, counts
    for k in acked:
        assert counts.get(f"{tag}-{k}") == RECORDS, (k, counts)
