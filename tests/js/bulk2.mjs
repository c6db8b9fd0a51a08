// Drives a Bulk API 2.0 server with the real jsforce client (tests/test_client_jsforce.py).
//
//   node bulk2.mjs <instanceUrl> <accessToken> <scenario>  < params.json
//
// Arguments, params and output as harness.mjs describes.
//
// params: {object, operation, input, externalIdFieldName?, columnDelimiter?, lineEnding?}
// input is an array of records or a CSV string, handed to jsforce unchanged.
//
// Scenarios:
//   load    conn.bulk2.loadAndWaitForResults(...) -> {successfulResults, failedResults,
//           unprocessedRecords}
//   steps   createJob/open/uploadData/close/poll/getAllResults, plus the job info after each
//           step and the raw result CSVs
//   failed  like steps, for a job expected to end Failed: the poll error, the final job info and
//           getAllResults()
//   abort   open (+ upload when input is given), abort, poll (expected to throw), delete, check
//           (expected to fail with NOT_FOUND)
import { POLL_INTERVAL, POLL_TIMEOUT, captureError, runScenario } from './harness.mjs';

/** The options jsforce sends on job creation: only those the test gave. */
function jobOptions(p) {
  const opts = { object: p.object, operation: p.operation };
  for (const key of ['externalIdFieldName', 'columnDelimiter', 'lineEnding', 'assignmentRuleId']) {
    if (p[key] !== undefined) opts[key] = p[key];
  }
  return opts;
}

async function rawResults(job) {
  return {
    successfulResults: await job.getSuccessfulResults(true),
    failedResults: await job.getFailedResults(true),
    unprocessedRecords: await job.getUnprocessedRecords(true),
  };
}

const scenarios = {
  async load(conn, p) {
    return conn.bulk2.loadAndWaitForResults({
      ...jobOptions(p),
      input: p.input,
      pollInterval: POLL_INTERVAL,
      pollTimeout: POLL_TIMEOUT,
    });
  },

  async steps(conn, p) {
    const job = conn.bulk2.createJob(jobOptions(p));
    const opened = await job.open();
    await job.uploadData(p.input);
    await job.close();
    const closed = job.getInfo();
    await job.poll(POLL_INTERVAL, POLL_TIMEOUT);
    const polled = job.getInfo();
    const results = await job.getAllResults();
    return { jobId: job.id, opened, closed, polled, results, raw: await rawResults(job) };
  },

  async failed(conn, p) {
    const job = conn.bulk2.createJob(jobOptions(p));
    await job.open();
    await job.uploadData(p.input);
    await job.close();
    const pollError = await captureError(job.poll(POLL_INTERVAL, POLL_TIMEOUT));
    const final = await job.check();
    const results = await job.getAllResults();
    return { jobId: job.id, pollError, final, results, raw: await rawResults(job) };
  },

  async abort(conn, p) {
    const job = conn.bulk2.createJob(jobOptions(p));
    const opened = await job.open();
    if (p.input !== undefined) await job.uploadData(p.input);
    await job.abort();
    const aborted = job.getInfo();
    const pollError = await captureError(job.poll(POLL_INTERVAL, POLL_TIMEOUT));
    const deleteError = await captureError(job.delete());
    const checkAfterDelete = await captureError(job.check());
    return { jobId: opened.id, opened, aborted, pollError, deleteError, checkAfterDelete };
  },
};

runScenario('bulk2.mjs', scenarios);
