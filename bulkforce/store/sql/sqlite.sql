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
    line_ending, column_delimiter, concurrency_mode, upload_count, upload_bytes, upload_problem, query,
    pk_chunking)
VALUES (:id, :job_type, :object, :operation, :state, :created_by, :created_date,
    :system_modstamp, :api_version, :external_id_field, :assignment_rule_id, :content_type,
    :line_ending, :column_delimiter, :concurrency_mode, :upload_count, :upload_bytes,
    :upload_problem, :query,
    :pk_chunking);

-- name: get_job
SELECT * FROM bf_job WHERE id = ?;

-- name: list_jobs
SELECT * FROM bf_job
WHERE (:job_type IS NULL OR job_type = :job_type)
  AND (:created_by IS NULL OR created_by = :created_by)
  AND (:concurrency_mode IS NULL OR lower(concurrency_mode) = lower(:concurrency_mode))
  AND (:pk_chunking IS NULL OR (pk_chunking IS NOT NULL) = (:pk_chunking = 1))
  AND (:job_types = '' OR instr(',' || :job_types || ',', ',' || job_type || ',') > 0)
  AND id > :after
ORDER BY id
LIMIT :limit;

-- name: recent_jobs
SELECT * FROM bf_job
WHERE (:job_type IS NULL OR job_type = :job_type)
  AND (:created_by IS NULL OR created_by = :created_by)
  AND (:state IS NULL OR state = :state)
  AND (:object IS NULL OR lower(object) = lower(:object))
  AND (:operation IS NULL OR operation = :operation)
ORDER BY id DESC
LIMIT :limit;

-- name: delete_job
DELETE FROM bf_job WHERE id = ?;

-- name: record_upload
UPDATE bf_job
SET upload_count = upload_count + 1, upload_bytes = :bytes, upload_problem = :problem,
    upload_rows = :rows, system_modstamp = :now
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

-- name: claim_candidates
-- claim_jobs: the oldest claimable jobs, to claim the first and the small ones right behind it.
SELECT id, upload_rows FROM bf_job
WHERE state IN ('UploadComplete', 'InProgress')
  AND (lease_owner IS NULL OR lease_expires < :clock)
ORDER BY system_modstamp, id
LIMIT :limit;

-- name: claim_ids
UPDATE bf_job
SET state = 'InProgress', lease_owner = :owner, lease_expires = :expires, system_modstamp = :now,
    retries = retries + (CASE WHEN state = 'InProgress' THEN 1 ELSE 0 END)
WHERE id IN (SELECT value FROM json_each(:ids))
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

-- name: complete_job
-- The job's end in the transaction of its last batch group (worker.py): one write less per job.
UPDATE bf_job
SET state = 'JobComplete', system_modstamp = :now, header = coalesce(header, :header)
WHERE id = :id AND lease_owner = :owner AND state = 'InProgress';

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
    total_processing_time INTEGER NOT NULL DEFAULT 0,
    api_active_processing_time INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    UNIQUE (job_id, seq)
);
CREATE INDEX IF NOT EXISTS bf_batch_state ON bf_batch (state);
ALTER TABLE bf_job ADD COLUMN spec TEXT;

-- name: insert_batch
INSERT INTO bf_batch (id, job_id, seq, state, created_date, system_modstamp, content_type,
    record_count)
VALUES (:id, :job_id, (SELECT coalesce(max(seq), -1) + 1 FROM bf_batch WHERE job_id = :job_id),
    'Queued', :now, :now, :content_type, :record_count)
RETURNING *;

-- name: get_batch
SELECT * FROM bf_batch WHERE id = ?;

-- name: list_batches
SELECT * FROM bf_batch WHERE job_id = ? ORDER BY seq;

-- name: batch_stats
SELECT
    count(*) FILTER (WHERE state = 'Queued') AS queued,
    count(*) FILTER (WHERE state = 'InProgress') AS in_progress,
    count(*) FILTER (WHERE state = 'Completed') AS completed,
    count(*) FILTER (WHERE state = 'Failed') AS failed,
    -- a PK-chunked original is not counted (the guide's example job): its chunks are
    count(*) FILTER (WHERE state = 'NotProcessed' AND NOT EXISTS (
        SELECT 1 FROM bf_batch c WHERE c.chunk_of = bf_batch.id)) AS not_processed,
    coalesce(sum(records_processed), 0) AS records_processed,
    coalesce(sum(records_failed), 0) AS records_failed,
    coalesce(sum(retries), 0) AS retries,
    coalesce(sum(total_processing_time), 0) AS total_processing_time
FROM bf_batch WHERE job_id = ?;

-- name: not_processed
UPDATE bf_batch SET state = 'NotProcessed', system_modstamp = :now
WHERE job_id = :job_id AND state = 'Queued';

-- name: claim_batch
-- Oldest claimable batch of an Open/Closed job. A Serial job offers only its first unfinished
-- batch, and only while none of its batches is being worked on by a live lease.
UPDATE bf_batch
SET state = 'InProgress', lease_owner = :owner, lease_expires = :expires, system_modstamp = :now,
    retries = retries + (CASE WHEN state = 'InProgress' THEN 1 ELSE 0 END)
WHERE id = (
    SELECT b.id FROM bf_batch b JOIN bf_job j ON j.id = b.job_id
    WHERE j.state IN ('Open', 'Closed')
      AND ((b.state = 'Queued')
           OR (b.state = 'InProgress' AND (b.lease_owner IS NULL OR b.lease_expires < :clock)))
      AND (j.concurrency_mode = 'Parallel' OR NOT EXISTS (
          SELECT 1 FROM bf_batch o
          WHERE o.job_id = b.job_id AND o.id != b.id
            AND ((o.state = 'InProgress' AND o.lease_expires >= :clock)
                 OR (o.state IN ('Queued', 'InProgress') AND o.seq < b.seq))))
    ORDER BY b.created_date, b.seq
    LIMIT 1
)
RETURNING *;

-- name: finish_batch
UPDATE bf_batch
SET state = :state, state_message = :message, records_processed = :processed,
    records_failed = :failed, total_processing_time = :ms, api_active_processing_time = :ms,
    system_modstamp = :now, lease_owner = NULL, lease_expires = NULL
WHERE id = :id AND lease_owner = :owner AND state = 'InProgress';

-- name: clear_batch_leases
UPDATE bf_batch SET lease_owner = NULL, lease_expires = NULL WHERE state = 'InProgress';

-- name: set_spec
UPDATE bf_job SET spec = :spec, system_modstamp = :now WHERE id = :id AND state = 'Open'
  AND NOT EXISTS (SELECT 1 FROM bf_batch WHERE job_id = :id);

-- name: bulk_batches_since
-- The daily Bulk API batch allocation counts Bulk 1.0 batches and Bulk 2.0 internal batches.
SELECT (SELECT count(*) FROM bf_batch WHERE created_date >= :since)
     + (SELECT coalesce(sum(batches_done), 0) FROM bf_job
        WHERE job_type = 'V2Ingest' AND created_date >= :since) AS batches;

-- name: jobs_since
SELECT job_type, count(*) AS n FROM bf_job WHERE created_date >= :since GROUP BY job_type;

-- name: expired_jobs
-- Salesforce deletes 2.0 jobs 7 days after they end and 1.0 jobs 7 days after creation.
SELECT id FROM bf_job
WHERE (job_type IN ('V2Ingest', 'V2Query') AND state IN ('JobComplete', 'Failed', 'Aborted')
       AND system_modstamp < :before)
   OR (job_type = 'Classic' AND created_date < :before);

-- name: abort_stale_open
UPDATE bf_job SET state = 'Aborted', system_modstamp = :now,
    error_message = 'Aborted: the job stayed Open for longer than allowed'
WHERE state = 'Open' AND created_date < :before;

-- name: stale_batches_not_processed
UPDATE bf_batch SET state = 'NotProcessed', system_modstamp = :now
WHERE state = 'Queued' AND job_id IN (SELECT id FROM bf_job WHERE state = 'Aborted');

-- name: migrate_3
-- Login (issue #6): users with hashed credentials, connected apps with hashed secrets, and
-- sessions keyed by the SHA-256 of the token (the token itself is never stored).
CREATE TABLE IF NOT EXISTS bf_user (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email TEXT NOT NULL,
    full_name TEXT NOT NULL,
    credential_hash TEXT NOT NULL,
    created_date TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until REAL
);
CREATE TABLE IF NOT EXISTS bf_app (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    run_as TEXT REFERENCES bf_user (id) ON DELETE SET NULL,
    created_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bf_session (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES bf_user (id) ON DELETE CASCADE,
    client_id TEXT REFERENCES bf_app (client_id) ON DELETE CASCADE,
    parent TEXT REFERENCES bf_session (token_hash) ON DELETE CASCADE,
    issued REAL NOT NULL,
    expires REAL
);
CREATE INDEX IF NOT EXISTS bf_session_expires ON bf_session (expires);
CREATE INDEX IF NOT EXISTS bf_session_parent ON bf_session (parent);

-- name: migrate_6
-- Web console (issue #13): each job's state changes with their times, recorded by triggers so
-- that every code path that moves a job is covered; and the upload's line count, for progress.
ALTER TABLE bf_job ADD COLUMN upload_rows INTEGER;
CREATE TABLE IF NOT EXISTS bf_job_event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES bf_job (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bf_job_event_job ON bf_job_event (job_id);
CREATE TRIGGER IF NOT EXISTS bf_job_event_insert AFTER INSERT ON bf_job
BEGIN
    INSERT INTO bf_job_event (job_id, state, at)
    VALUES (new.id, new.state, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;
CREATE TRIGGER IF NOT EXISTS bf_job_event_update AFTER UPDATE OF state ON bf_job
WHEN new.state <> old.state
BEGIN
    INSERT INTO bf_job_event (job_id, state, at)
    VALUES (new.id, new.state, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

-- name: job_history
SELECT state, at FROM bf_job_event WHERE job_id = ? ORDER BY seq;

-- name: add_user
INSERT INTO bf_user (id, username, email, full_name, credential_hash, created_date, is_admin,
                     manage_data_integrations)
VALUES (:id, :username, :email, :full_name, :credential_hash, :created_date, :is_admin,
        :manage_data_integrations);

-- name: get_user
SELECT * FROM bf_user WHERE id = ?;

-- name: get_user_by_name
SELECT * FROM bf_user WHERE username = ?;

-- name: list_users
SELECT * FROM bf_user ORDER BY username;

-- name: remove_user
DELETE FROM bf_user WHERE username = ? RETURNING id;

-- name: login_attempt
-- Counted before the password is checked, in one statement with the lock check: of a burst of
-- parallel attempts only the first `max` are ever checked, however they interleave.
UPDATE bf_user SET failed_logins = failed_logins + 1
WHERE id = :id AND (locked_until IS NULL OR locked_until <= :now)
RETURNING failed_logins;

-- name: login_failed
-- The attempt was counted by login_attempt; reaching the limit locks (and restarts the count).
UPDATE bf_user SET failed_logins = 0, locked_until = :until
WHERE id = :id AND failed_logins >= :max;

-- name: login_ok
UPDATE bf_user SET failed_logins = 0, locked_until = NULL WHERE id = ?;

-- name: add_app
INSERT INTO bf_app (client_id, name, secret_hash, run_as, created_date)
VALUES (:client_id, :name, :secret_hash, :run_as, :created_date);

-- name: get_app
SELECT * FROM bf_app WHERE client_id = ?;

-- name: list_apps
SELECT * FROM bf_app ORDER BY created_date, client_id;

-- name: add_session
INSERT INTO bf_session (token_hash, kind, user_id, client_id, parent, issued, expires)
VALUES (:token_hash, :kind, :user_id, :client_id, :parent, :issued, :expires);

-- name: get_session
SELECT * FROM bf_session WHERE token_hash = ?;

-- name: extend_session
UPDATE bf_session SET expires = :expires WHERE token_hash = :token_hash AND expires < :expires;

-- name: delete_session
DELETE FROM bf_session WHERE token_hash = ?;

-- name: purge_sessions
DELETE FROM bf_session WHERE expires IS NOT NULL AND expires < ?;

-- name: lock_open_job
-- SQLite's write transaction already excludes every other writer.
SELECT 1 FROM bf_job WHERE id = ? AND state = 'Open';

-- name: lock_prefixes
SELECT 1;

-- name: delete_meta
DELETE FROM bf_meta WHERE key = ?;

-- name: add_meta
INSERT INTO bf_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING;

-- name: claimable_job
-- A read-only look before claim_job: idle workers must not take SQLite's write lock (and so
-- interrupt a running job's transaction) just to find there is nothing to do.
SELECT 1 FROM bf_job
WHERE state IN ('UploadComplete', 'InProgress')
  AND (lease_owner IS NULL OR lease_expires < :clock)
LIMIT 1;

-- name: claimable_batch
SELECT 1 FROM bf_batch
WHERE state = 'Queued' OR (state = 'InProgress' AND (lease_owner IS NULL OR lease_expires < :clock))
LIMIT 1;

-- name: migrate_4
-- Roles (issue #9): admins may reset the org; users with Manage Data Integrations (and admins)
-- see and act on every user's jobs, everyone else only on their own.
ALTER TABLE bf_user ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bf_user ADD COLUMN manage_data_integrations INTEGER NOT NULL DEFAULT 0;

-- name: set_user_roles
UPDATE bf_user SET is_admin = :is_admin, manage_data_integrations = :manage_data_integrations
WHERE id = :id;

-- name: migrate_5
-- Query (issue #10): a Bulk 2.0 query job's SOQL, and REST query cursors: one row per query
-- whose results span several pages, one per page served (the keyset position it starts
-- after), so a locator can be fetched again and any API process can serve the next page.
ALTER TABLE bf_job ADD COLUMN query TEXT;
CREATE TABLE IF NOT EXISTS bf_query_cursor (
    id TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    all_rows INTEGER NOT NULL,
    total BIGINT NOT NULL,
    batch_size INTEGER NOT NULL,
    created_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bf_query_page (
    cursor_id TEXT NOT NULL,
    pos BIGINT NOT NULL,
    after_key TEXT NOT NULL,
    PRIMARY KEY (cursor_id, pos)
);
CREATE INDEX IF NOT EXISTS bf_query_cursor_created ON bf_query_cursor (created_date);

-- name: add_cursor
INSERT INTO bf_query_cursor (id, query, all_rows, total, batch_size, created_date)
VALUES (:id, :query, :all_rows, :total, :batch_size, :created_date);

-- name: get_cursor_page
SELECT c.*, p.after_key FROM bf_query_cursor c
JOIN bf_query_page p ON p.cursor_id = c.id
WHERE c.id = :id AND p.pos = :pos;

-- name: put_page
INSERT INTO bf_query_page (cursor_id, pos, after_key) VALUES (:id, :pos, :after_key)
ON CONFLICT (cursor_id, pos) DO NOTHING;

-- name: expire_pages
DELETE FROM bf_query_page
WHERE cursor_id IN (SELECT id FROM bf_query_cursor WHERE created_date < :before);

-- name: expire_cursors
DELETE FROM bf_query_cursor WHERE created_date < :before;

-- name: migrate_7
-- Bulk 1.0 query jobs (issue #11): a job's PK-chunking options, and the original batch each
-- chunk batch was cut from.
ALTER TABLE bf_job ADD COLUMN pk_chunking TEXT;
ALTER TABLE bf_batch ADD COLUMN chunk_of TEXT;
CREATE INDEX IF NOT EXISTS bf_batch_chunk_of ON bf_batch (chunk_of);

-- name: insert_chunk_batch
-- A PK-chunking chunk batch, inserted with its original's NotProcessed in one transaction.
INSERT INTO bf_batch (id, job_id, seq, state, created_date, system_modstamp, content_type,
    record_count, chunk_of)
VALUES (:id, :job_id,
    (SELECT coalesce(max(seq), -1) + 1 FROM bf_batch WHERE job_id = :job_id),
    'Queued', :now, :now, :content_type, 0, :chunk_of);

-- name: renew_batch_lease
-- A long query batch keeps its claim while it writes its result.
UPDATE bf_batch SET lease_expires = :expires
WHERE id = :id AND state = 'InProgress' AND lease_owner = :owner;
