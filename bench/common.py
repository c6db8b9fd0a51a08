"""Constants the benchmarks share: API version, token, the Contact columns, limits and targets."""

from __future__ import annotations

from pathlib import Path

API_VERSION = "59.0"
TOKEN = "00D000000000001AAA!AQEAQBench"
OBJECT = "Contact"
EXT_ID = "External_Id__c"
COLUMNS: tuple[str, ...] = (
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "Title",
    "Department",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "Description",
    EXT_ID,
)
CHUNK_ROWS = 10_000  # generator write unit; also the split granularity for --max-upload-mb
IO_BLOCK = 1 << 20  # upload / download block size
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEFAULT_SCHEMA = BENCH_DIR / "contact_schema.json"
SERVER_UPLOAD_LIMIT = 150 * 1024 * 1024  # bulkforce serve's default --max-upload-mb (MiB)
TARGETS = {
    "insert": 0.80,
    "upsert": 0.70,
    "rss_mb": 300.0,
    "latency_ms": 15.0,
    "latency_max_ms": 40.0,
}
BULK1_JOB = f"/services/async/{API_VERSION}/job"
BULK1_NS = "http://www.force.com/2009/06/asyncapi/dataload"
BULK1_MODES = ("Parallel", "Serial")
BULK1_BATCHES = 10
BULK1_BATCH_ROWS = CHUNK_ROWS  # 10,000: the Bulk 1.0 per-batch record limit
BULK1_RESULT_HEADER = b'"Id","Success","Created","Error"'
