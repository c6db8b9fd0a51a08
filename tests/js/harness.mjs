// What bulk1.mjs and bulk2.mjs share: reading their arguments and params, running one named
// scenario on a jsforce Connection and printing its result or error as one JSON document.
//
//   node <script>.mjs <instanceUrl> <accessToken> <scenario>  < params.json
//
// instanceUrl, accessToken and scenario may also come from BULKFORCE_URL, BULKFORCE_TOKEN and
// BULKFORCE_SCENARIO; params (JSON) from stdin or BULKFORCE_PARAMS. Prints one JSON document on
// stdout: the scenario's result (exit 0) or {"error": {...}} (exit 1).
import { readFileSync } from 'node:fs';
import jsforce from 'jsforce';

export const POLL_INTERVAL = 50;
export const POLL_TIMEOUT = 60000;

function readParams() {
  if (process.env.BULKFORCE_PARAMS) return JSON.parse(process.env.BULKFORCE_PARAMS);
  if (process.stdin.isTTY) return {};
  const text = readFileSync(0, 'utf8');
  return text.trim() ? JSON.parse(text) : {};
}

export function describeError(err) {
  if (!err) return null;
  return { name: err.name, message: err.message, errorCode: err.errorCode ?? null };
}

/** The error `promise` rejects with (described), or null when it resolves. */
export async function captureError(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return describeError(err);
  }
}

function finish(doc, code) {
  process.stdout.write(JSON.stringify(doc), () => process.exit(code));
}

/** Runs the scenario the arguments name, `setup` having adjusted the Connection first. */
export async function runScenario(script, scenarios, setup = () => {}) {
  const [
    instanceUrl = process.env.BULKFORCE_URL,
    accessToken = process.env.BULKFORCE_TOKEN,
    scenario = process.env.BULKFORCE_SCENARIO,
  ] = process.argv.slice(2);
  if (!instanceUrl || !accessToken || !(scenario in scenarios)) {
    const names = Object.keys(scenarios).join('|');
    finish({ error: { name: 'Usage', message: `${script} <instanceUrl> <token> <${names}>` } }, 2);
    return;
  }
  const conn = new jsforce.Connection({ instanceUrl, accessToken, version: '59.0' });
  setup(conn);
  try {
    finish(await scenarios[scenario](conn, readParams()), 0);
  } catch (err) {
    finish({ error: describeError(err) }, 1);
  }
}
