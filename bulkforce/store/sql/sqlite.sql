-- Named queries for the SQLite store. `-- name: X` starts a query; the loader keeps the text.
-- Record tables (one per sObject) are generated from the schema in store/records.py.

-- name: migrate_1
CREATE TABLE IF NOT EXISTS bf_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bf_counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bf_key_prefix (
    object TEXT PRIMARY KEY COLLATE NOCASE,
    prefix TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS bf_job (
    id TEXT PRIMARY KEY,
    job_type TEXT NOT NULL,
    object TEXT NOT NULL,
    operation TEXT NOT NULL,
    state TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_date TEXT NOT NULL,
    system_modstamp TEXT NOT NULL,
    api_version TEXT NOT NULL,
    external_id_field TEXT,
    assignment_rule_id TEXT,
    content_type TEXT NOT NULL,
    line_ending TEXT NOT NULL,
    column_delimiter TEXT NOT NULL,
    concurrency_mode TEXT NOT NULL,
    error_message TEXT,
    records_processed INTEGER NOT NULL DEFAULT 0,
    records_failed INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    total_processing_time INTEGER NOT NULL DEFAULT 0,
    api_active_processing_time INTEGER NOT NULL DEFAULT 0,
    apex_processing_time INTEGER NOT NULL DEFAULT 0,
    upload_count INTEGER NOT NULL DEFAULT 0,
    upload_bytes INTEGER NOT NULL DEFAULT 0,
    upload_problem TEXT,
    batches_done INTEGER NOT NULL DEFAULT 0,
    header TEXT,
    lease_owner TEXT,
    lease_expires REAL
);
CREATE INDEX IF NOT EXISTS bf_job_state ON bf_job (state);

-- name: get_meta
SELECT value FROM bf_meta WHERE key = ?;

-- name: set_meta
INSERT INTO bf_meta (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: bump_counter
INSERT INTO bf_counter (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = value + excluded.value
RETURNING value;

-- name: get_prefix
SELECT prefix FROM bf_key_prefix WHERE object = ?;

-- name: all_prefixes
SELECT prefix FROM bf_key_prefix;

-- name: add_prefix
INSERT INTO bf_key_prefix (object, prefix) VALUES (?, ?);

-- name: insert_job
INSERT INTO bf_job (id, job_type, object, operation, state, created_by, created_date,
    system_modstamp, api_version, external_id_field, assignment_rule_id, content_type,
    line_ending, column_delimiter, concurrency_mode, upload_count, upload_bytes, upload_problem)
VALUES (:id, :job_type, :object, :operation, :state, :created_by, :created_date,
    :system_modstamp, :api_version, :external_id_field, :assignment_rule_id, :content_type,
    :line_ending, :column_delimiter, :concurrency_mode, :upload_count, :upload_bytes,
    :upload_problem);

-- name: get_job
SELECT * FROM bf_job WHERE id = ?;

-- name: list_jobs
SELECT * FROM bf_job
WHERE (:job_type IS NULL OR job_type = :job_type)
  AND (:concurrency_mode IS NULL OR lower(concurrency_mode) = lower(:concurrency_mode))
  AND (:pk_chunking IS NULL OR :pk_chunking = 0)
  AND id > :after
ORDER BY id
LIMIT :limit;

-- name: delete_job
DELETE FROM bf_job WHERE id = ?;

-- name: record_upload
UPDATE bf_job
SET upload_count = upload_count + 1, upload_bytes = :bytes, upload_problem = :problem,
    system_modstamp = :now
WHERE id = :id AND state = 'Open';

-- name: claim_job
UPDATE bf_job
SET state = 'InProgress', lease_owner = :owner, lease_expires = :expires, system_modstamp = :now,
    retries = retries + (CASE WHEN state = 'InProgress' THEN 1 ELSE 0 END)
WHERE id = (
    SELECT id FROM bf_job
    WHERE state IN ('UploadComplete', 'InProgress')
      AND (lease_owner IS NULL OR lease_expires < :clock)
    ORDER BY system_modstamp, id
    LIMIT 1
)
RETURNING *;

-- name: renew_lease
UPDATE bf_job SET lease_expires = :expires
WHERE id = :id AND lease_owner = :owner AND state = 'InProgress';

-- name: clear_leases
UPDATE bf_job SET lease_owner = NULL, lease_expires = NULL
WHERE state IN ('UploadComplete', 'InProgress');

-- name: advance_job
UPDATE bf_job
SET batches_done = batches_done + 1,
    records_processed = records_processed + :processed,
    records_failed = records_failed + :failed,
    total_processing_time = total_processing_time + :ms,
    api_active_processing_time = api_active_processing_time + :ms,
    system_modstamp = :now,
    lease_expires = :expires
WHERE id = :id AND lease_owner = :owner AND state = 'InProgress' AND batches_done = :seq;

-- name: next_max_id
SELECT coalesce(max(id), '') FROM bf_job;
