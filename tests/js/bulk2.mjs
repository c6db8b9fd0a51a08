// Drives a Bulk API 2.0 server with the real jsforce client (tests/test_client_jsforce.py).
//
//   node bulk2.mjs <instanceUrl> <accessToken> <scenario>  < params.json
//
// instanceUrl, accessToken and scenario may also come from BULKFORCE_URL, BULKFORCE_TOKEN and
// BULKFORCE_SCENARIO; params (JSON) from stdin or BULKFORCE_PARAMS. Prints one JSON document on
// stdout: the scenario's result (exit 0) or {"error": {...}} (exit 1).
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
import { readFileSync } from 'node:fs';
import jsforce from 'jsforce';

const POLL_INTERVAL = 50;
const POLL_TIMEOUT = 60000;

const [
  instanceUrl = process.env.BULKFORCE_URL,
  accessToken = process.env.BULKFORCE_TOKEN,
  scenario = process.env.BULKFORCE_SCENARIO,
] = process.argv.slice(2);

function readParams() {
  if (process.env.BULKFORCE_PARAMS) return JSON.parse(process.env.BULKFORCE_PARAMS);
  if (process.stdin.isTTY) return {};
  const text = readFileSync(0, 'utf8');
  return text.trim() ? JSON.parse(text) : {};
}

function describeError(err) {
  if (!err) return null;
  return { name: err.name, message: err.message, errorCode: err.errorCode ?? null };
}

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

async function captureError(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return describeError(err);
  }
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

function finish(doc, code) {
  process.stdout.write(JSON.stringify(doc), () => process.exit(code));
}

async function main() {
  if (!instanceUrl || !accessToken || !(scenario in scenarios)) {
    const names = Object.keys(scenarios).join('|');
    finish({ error: { name: 'Usage', message: `bulk2.mjs <instanceUrl> <token> <${names}>` } }, 2);
    return;
  }
  const conn = new jsforce.Connection({ instanceUrl, accessToken, version: '59.0' });
  try {
    finish(await scenarios[scenario](conn, readParams()), 0);
  } catch (err) {
    finish({ error: describeError(err) }, 1);
  }
}

main();
