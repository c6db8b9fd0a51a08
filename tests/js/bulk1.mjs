// Drives a Bulk API 1.0 server with the real jsforce client (tests/test_client_jsforce_bulk1.py).
//
//   node bulk1.mjs <instanceUrl> <accessToken> <scenario>  < params.json
//
// Arguments, params and output as harness.mjs describes.
//
// params: {object, operation, options?, input?, batches?}
//   options  handed to jsforce unchanged ({extIdField, concurrencyMode, ...})
//   input    an array of records or a CSV string (load)
//   batches  a list of such inputs, one batch each (steps, abort)
//
// Scenarios:
//   load    conn.bulk.load(object, operation, options, input) -> {jobId, batchId, results,
//           closed}: the results array and the jobInfo of the close jsforce does afterwards
//   steps   createJob/open, one createBatch().execute() per batch, poll, retrieve, check,
//           job.check/list/close/info -> every step's answer
//   abort   open, optional batches run to completion, abort, then a batch of params.lateInput
//           on the aborted job and a close (both expected to fail) and a fresh check of the job
//   query   conn.bulk.query(params.soql): a CSV query job whose result files jsforce pipes into
//           one CSV parser -> {records}
import { POLL_INTERVAL, POLL_TIMEOUT, captureError, runScenario } from './harness.mjs';

/** Resolves with the first of `events` emitted by `emitter`; rejects on 'error'. */
function once(emitter, event) {
  return new Promise((resolve, reject) => {
    emitter.once(event, resolve);
    emitter.once('error', reject);
  });
}

/** Uploads one batch, waits until the server queued it, polls it and returns what it got. */
async function runBatch(job, input) {
  const batch = job.createBatch();
  const queued = once(batch, 'queue');
  batch.execute(input).then(null, () => {}); // errors surface through `queued` / `await batch`
  const queuedInfo = await queued;
  batch.poll(POLL_INTERVAL, POLL_TIMEOUT);
  const results = await batch; // resolves on the 'response' of the poll's retrieve()
  return { batch, queuedInfo, results };
}

const scenarios = {
  async query(conn, p) {
    const stream = await conn.bulk.query(p.soql);
    const records = [];
    await new Promise((resolve, reject) => {
      stream.on('record', (rec) => records.push(rec));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    return { records };
  },

  async load(conn, p) {
    const batch = conn.bulk.load(p.object, p.operation, p.options ?? {}, p.input);
    const job = batch.job;
    // jsforce closes the job after the results arrive, without waiting for it
    const closed = once(job, 'close');
    closed.catch(() => {}); // awaited below only when the load succeeded
    const results = await batch;
    const closedInfo = await closed;
    return { jobId: closedInfo.id, batchId: batch.id, results, closed: closedInfo };
  },

  async steps(conn, p) {
    const job = conn.bulk.createJob(p.object, p.operation, p.options ?? {});
    const opened = await job.open();
    const runs = await Promise.all((p.batches ?? []).map((input) => runBatch(job, input)));
    const batches = [];
    for (const { batch, queuedInfo, results } of runs) {
      batches.push({
        id: batch.id,
        queued: queuedInfo,
        results,
        retrieved: await batch.retrieve(),
        checked: await batch.check(),
      });
    }
    const jobId = job.id;
    const beforeClose = await job.check();
    const list = await job.list();
    const closed = await job.close();
    const info = await job.info(); // cached: the answer to the close
    const afterClose = await conn.bulk.job(jobId).check();
    return { jobId, opened, batches, beforeClose, list, closed, info, afterClose };
  },

  async abort(conn, p) {
    const job = conn.bulk.createJob(p.object, p.operation, p.options ?? {});
    const opened = await job.open();
    const jobId = job.id;
    const runs = [];
    for (const input of p.batches ?? []) runs.push((await runBatch(job, input)).results);
    const aborted = await job.abort();
    const again = conn.bulk.job(jobId);
    const lateBatch = again.createBatch();
    const lateQueued = once(lateBatch, 'queue');
    lateBatch.execute(p.lateInput).then(null, () => {}); // the error comes through lateQueued
    const batchError = await captureError(lateQueued);
    const closeError = await captureError(conn.bulk.job(jobId).close());
    const afterAbort = await conn.bulk.job(jobId).check();
    return { jobId, opened, runs, aborted, batchError, closeError, afterAbort };
  },
};

runScenario('bulk1.mjs', scenarios, (conn) => {
  conn.bulk.pollInterval = POLL_INTERVAL;
  conn.bulk.pollTimeout = POLL_TIMEOUT;
});
