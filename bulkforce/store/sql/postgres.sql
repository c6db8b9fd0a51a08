-- Named queries for the PostgreSQL store. `-- name: X` starts a query; the loader keeps the text.
-- Record tables (one per sObject) are generated from the schema in store/postgres.py.

-- name: migrate_1
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TABLE IF NOT EXISTS bf_counter (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS bf_key_prefix (object CITEXT PRIMARY KEY, prefix TEXT NOT NULL UNIQUE);
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
    total_processing_time BIGINT NOT NULL DEFAULT 0,
    api_active_processing_time BIGINT NOT NULL DEFAULT 0,
    apex_processing_time BIGINT NOT NULL DEFAULT 0,
    upload_count INTEGER NOT NULL DEFAULT 0,
    upload_bytes BIGINT NOT NULL DEFAULT 0,
    upload_problem TEXT,
    batches_done INTEGER NOT NULL DEFAULT 0,
    header TEXT,
    lease_owner TEXT,
    lease_expires DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS bf_job_state ON bf_job (state);
-- Uploads and results in the database: any API process on any host serves any job.
CREATE TABLE IF NOT EXISTS bf_blob (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (name, seq)
);
-- CSV is already dense; pglz compression would cost CPU on every upload for little gain.
ALTER TABLE bf_blob ALTER COLUMN data SET STORAGE EXTERNAL;

-- name: migrate_2
CREATE TABLE IF NOT EXISTS bf_batch (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES bf_job (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    state_message TEXT,
    created_date TEXT NOT NULL,
    system_modstamp TEXT NOT NULL,
    content_type TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    records_processed INTEGER NOT NULL DEFAULT 0,
    records_failed INTEGER NOT NULL DEFAULT 0,
    total_processing_time BIGINT NOT NULL DEFAULT 0,
    api_active_processing_time BIGINT NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires DOUBLE PRECISION,
    UNIQUE (job_id, seq)
);
CREATE INDEX IF NOT EXISTS bf_batch_state ON bf_batch (state);
ALTER TABLE bf_job ADD COLUMN IF NOT EXISTS spec TEXT;

-- name: migrate_6
-- Web console (issue #13): each job's state changes with their times, recorded by a trigger so
-- that every code path that moves a job is covered; and the upload's line count, for progress.
ALTER TABLE bf_job ADD COLUMN IF NOT EXISTS upload_rows BIGINT;
CREATE TABLE IF NOT EXISTS bf_job_event (
    seq BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES bf_job (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bf_job_event_job ON bf_job_event (job_id);
CREATE OR REPLACE FUNCTION bf_job_event_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO bf_job_event (job_id, state, at) VALUES (NEW.id, NEW.state,
            to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bf_job_event_trigger ON bf_job;
CREATE TRIGGER bf_job_event_trigger AFTER INSERT OR UPDATE OF state ON bf_job
FOR EACH ROW EXECUTE FUNCTION bf_job_event_record();

-- name: migrate_8
-- Blobs compressed with lz4 (issue #14): uploads and results are CSV, which lz4 shrinks ~2-3x
-- at a small CPU cost, so PostgreSQL writes that much less WAL for every batch's result blobs
-- and the upload (a 1M-row insert wrote ~350 MB of uncompressed blobs into the WAL). Without
-- lz4 (a server built without it) the column stays uncompressed: pglz costs more than it saves.
-- Step numbers are shared with sqlite.sql (translated for PostgreSQL): a migrate_8 there would
-- be shadowed here, so the next shared step is 9.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE bf_blob ALTER COLUMN data SET COMPRESSION lz4';
    ALTER TABLE bf_blob ALTER COLUMN data SET STORAGE EXTENDED;
EXCEPTION WHEN feature_not_supported OR syntax_error OR invalid_parameter_value THEN
    RAISE NOTICE 'bf_blob stays uncompressed: %', SQLERRM;
END $$;

-- name: get_meta
SELECT value FROM bf_meta WHERE key = %s;

-- name: set_meta
INSERT INTO bf_meta (key, value) VALUES (%s, %s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: bump_counter
INSERT INTO bf_counter AS c (name, value) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
RETURNING value;

-- name: get_prefix
SELECT prefix FROM bf_key_prefix WHERE object = %s;

-- name: all_prefixes
SELECT prefix FROM bf_key_prefix;

-- name: add_prefix
INSERT INTO bf_key_prefix (object, prefix) VALUES (%s, %s) ON CONFLICT DO NOTHING;

-- name: insert_job
INSERT INTO bf_job (id, job_type, object, operation, state, created_by, created_date,
    system_modstamp, api_version, external_id_field, assignment_rule_id, content_type,
    line_ending, column_delimiter, concurrency_mode, upload_count, upload_bytes, upload_problem, query,
    pk_chunking)
VALUES (%(id)s, %(job_type)s, %(object)s, %(operation)s, %(state)s, %(created_by)s,
    %(created_date)s, %(system_modstamp)s, %(api_version)s, %(external_id_field)s,
    %(assignment_rule_id)s, %(content_type)s, %(line_ending)s, %(column_delimiter)s,
    %(concurrency_mode)s, %(upload_count)s, %(upload_bytes)s, %(upload_problem)s, %(query)s,
    %(pk_chunking)s);

-- name: get_job
SELECT * FROM bf_job WHERE id = %s;

-- name: list_jobs
SELECT * FROM bf_job
WHERE (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(created_by)s::text IS NULL OR created_by = %(created_by)s)
  AND (%(concurrency_mode)s::text IS NULL OR lower(concurrency_mode) = lower(%(concurrency_mode)s))
  AND (%(pk_chunking)s::int IS NULL OR (pk_chunking IS NOT NULL) = (%(pk_chunking)s::int = 1))
  AND (%(job_types)s = '' OR job_type = ANY(string_to_array(%(job_types)s, ',')))
  AND id > %(after)s
ORDER BY id
LIMIT %(limit)s;

-- name: recent_jobs
SELECT * FROM bf_job
WHERE (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(created_by)s::text IS NULL OR created_by = %(created_by)s)
  AND (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(object)s::text IS NULL OR lower(object) = lower(%(object)s))
  AND (%(operation)s::text IS NULL OR operation = %(operation)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: delete_job
DELETE FROM bf_job WHERE id = %s;

-- name: record_upload
UPDATE bf_job
SET upload_count = upload_count + 1, upload_bytes = %(bytes)s, upload_problem = %(problem)s,
    upload_rows = %(rows)s, system_modstamp = %(now)s
WHERE id = %(id)s AND state = 'Open';

-- name: claim_job
UPDATE bf_job
SET state = 'InProgress', lease_owner = %(owner)s, lease_expires = %(expires)s,
    system_modstamp = %(now)s,
    retries = retries + (CASE WHEN state = 'InProgress' THEN 1 ELSE 0 END)
WHERE id = (
    SELECT id FROM bf_job
    WHERE state IN ('UploadComplete', 'InProgress')
      AND (lease_owner IS NULL OR lease_expires < %(clock)s)
    ORDER BY system_modstamp, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- name: clear_leases
UPDATE bf_job SET lease_owner = NULL, lease_expires = NULL
WHERE state IN ('UploadComplete', 'InProgress');

-- name: advance_job
UPDATE bf_job
SET batches_done = batches_done + 1,
    records_processed = records_processed + %(processed)s,
    records_failed = records_failed + %(failed)s,
    total_processing_time = total_processing_time + %(ms)s,
    api_active_processing_time = api_active_processing_time + %(ms)s,
    system_modstamp = %(now)s,
    lease_expires = %(expires)s
WHERE id = %(id)s AND lease_owner = %(owner)s AND state = 'InProgress'
  AND batches_done = %(seq)s;

-- name: complete_job
-- The job's end in the transaction of its last batch group (worker.py): one write less per job.
UPDATE bf_job
SET state = 'JobComplete', system_modstamp = %(now)s, header = coalesce(header, %(header)s)
WHERE id = %(id)s AND lease_owner = %(owner)s AND state = 'InProgress';

-- name: insert_batch
INSERT INTO bf_batch (id, job_id, seq, state, created_date, system_modstamp, content_type,
    record_count)
VALUES (%(id)s, %(job_id)s,
    (SELECT coalesce(max(seq), -1) + 1 FROM bf_batch WHERE job_id = %(job_id)s),
    'Queued', %(now)s, %(now)s, %(content_type)s, %(record_count)s)
RETURNING *;

-- name: get_batch
SELECT * FROM bf_batch WHERE id = %s;

-- name: list_batches
SELECT * FROM bf_batch WHERE job_id = %s ORDER BY seq;

-- name: batch_stats
SELECT
    count(*) FILTER (WHERE state = 'Queued') AS queued,
    count(*) FILTER (WHERE state = 'InProgress') AS in_progress,
    count(*) FILTER (WHERE state = 'Completed') AS completed,
    count(*) FILTER (WHERE state = 'Failed') AS failed,
    -- a PK-chunked original is not counted (the guide's example job): its chunks are
    count(*) FILTER (WHERE state = 'NotProcessed' AND NOT EXISTS (
        SELECT 1 FROM bf_batch c WHERE c.chunk_of = bf_batch.id)) AS not_processed,
    coalesce(sum(records_processed), 0)::int AS records_processed,
    coalesce(sum(records_failed), 0)::int AS records_failed,
    coalesce(sum(retries), 0)::int AS retries,
    coalesce(sum(total_processing_time), 0)::bigint AS total_processing_time
FROM bf_batch WHERE job_id = %s;

-- name: not_processed
UPDATE bf_batch SET state = 'NotProcessed', system_modstamp = %(now)s
WHERE job_id = %(job_id)s AND state = 'Queued';

-- name: claim_batch
-- Oldest claimable batch of an Open/Closed job. A Serial job offers only its first unfinished
-- batch, and only while none of its batches is held by a live lease.
UPDATE bf_batch
SET state = 'InProgress', lease_owner = %(owner)s, lease_expires = %(expires)s,
    system_modstamp = %(now)s,
    retries = retries + (CASE WHEN state = 'InProgress' THEN 1 ELSE 0 END)
WHERE id = (
    SELECT b.id FROM bf_batch b JOIN bf_job j ON j.id = b.job_id
    WHERE j.state IN ('Open', 'Closed')
      AND ((b.state = 'Queued')
           OR (b.state = 'InProgress' AND (b.lease_owner IS NULL OR b.lease_expires < %(clock)s)))
      AND (j.concurrency_mode = 'Parallel' OR NOT EXISTS (
          SELECT 1 FROM bf_batch o
          WHERE o.job_id = b.job_id AND o.id != b.id
            AND ((o.state = 'InProgress' AND o.lease_expires >= %(clock)s)
                 OR (o.state IN ('Queued', 'InProgress') AND o.seq < b.seq))))
    ORDER BY b.created_date, b.seq
    LIMIT 1
    FOR UPDATE OF b SKIP LOCKED
)
RETURNING *;

-- name: finish_batch
UPDATE bf_batch
SET state = %(state)s, state_message = %(message)s, records_processed = %(processed)s,
    records_failed = %(failed)s, total_processing_time = %(ms)s,
    api_active_processing_time = %(ms)s, system_modstamp = %(now)s, lease_owner = NULL,
    lease_expires = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s AND state = 'InProgress';

-- name: clear_batch_leases
UPDATE bf_batch SET lease_owner = NULL, lease_expires = NULL WHERE state = 'InProgress';

-- name: set_spec
UPDATE bf_job SET spec = %(spec)s, system_modstamp = %(now)s WHERE id = %(id)s AND state = 'Open'
  AND NOT EXISTS (SELECT 1 FROM bf_batch WHERE job_id = %(id)s);

-- name: expired_jobs
SELECT id FROM bf_job
WHERE (job_type IN ('V2Ingest', 'V2Query') AND state IN ('JobComplete', 'Failed', 'Aborted')
       AND system_modstamp < %(before)s)
   OR (job_type = 'Classic' AND created_date < %(before)s);

-- name: abort_stale_open
UPDATE bf_job SET state = 'Aborted', system_modstamp = %(now)s,
    error_message = 'Aborted: the job stayed Open for longer than allowed'
WHERE state = 'Open' AND created_date < %(before)s;

-- name: stale_batches_not_processed
UPDATE bf_batch SET state = 'NotProcessed', system_modstamp = %(now)s
WHERE state = 'Queued' AND job_id IN (SELECT id FROM bf_job WHERE state = 'Aborted');

-- name: blob_put_chunk
INSERT INTO bf_blob (name, seq, data) VALUES (%s, %s, %s)
ON CONFLICT (name, seq) DO UPDATE SET data = excluded.data;

-- name: blob_put_pair
-- A batch's two result files in one statement (one round trip).
INSERT INTO bf_blob (name, seq, data) VALUES (%s, 0, %s), (%s, 0, %s)
ON CONFLICT (name, seq) DO UPDATE SET data = excluded.data;

-- name: blob_chunk
SELECT data FROM bf_blob WHERE name = %s AND seq = %s;

-- name: blob_delete
DELETE FROM bf_blob WHERE name = %s;

-- name: blob_delete_prefix
DELETE FROM bf_blob WHERE name LIKE %s;

-- name: blob_rename
UPDATE bf_blob SET name = %s WHERE name = %s;

-- name: blob_delete_stale_uploads
-- upload chunks are written as `tmp:{job}:{unix start time}:{uuid}` until the upload commits
DELETE FROM bf_blob
WHERE name LIKE 'tmp:%%' AND name ~ '^tmp:[^:]+:[0-9]+:'
  AND split_part(name, ':', 3)::bigint < %s;

-- name: blob_open
-- A blob's chunk count and its first chunk, in one round trip (a small upload is one chunk).
SELECT (SELECT count(*) FROM bf_blob WHERE name = %(name)s) AS n,
       (SELECT data FROM bf_blob WHERE name = %(name)s AND seq = 0) AS first;

-- name: lock_open_job
-- Batches of one job take their sequence numbers in turn.
SELECT 1 FROM bf_job WHERE id = %s AND state = 'Open' FOR UPDATE;

-- name: lock_prefixes
SELECT pg_advisory_xact_lock(4242003);
