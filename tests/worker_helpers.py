"""Driving the worker in-process: closed Bulk 2.0 jobs made through the service layer."""

from __future__ import annotations

from typing import Any

from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import IngestService

# in-process tests act as an admin: they see every job
ADMIN = Caller("005000000000000AAA", is_admin=True)


def submit(svc: IngestService, body: bytes, obj: str = "Contact", **spec: Any) -> str:
    """A job of `obj` (insert unless `spec` says otherwise) with `body` uploaded, closed."""
    job = svc.insert(svc.create("59.0", {"object": obj, "operation": "insert", **spec}))
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(body)
    sink.finish()
    svc.close(job.id, ADMIN)
    return job.id
