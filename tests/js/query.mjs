// Reads records back with the real jsforce client (tests/test_client_query.py).
//
//   node query.mjs <instanceUrl> <accessToken> <scenario>  < params.json
//
// Prints one JSON document on stdout: the scenario's result (exit 0) or {"error": {...}} (exit 1).
//
// params: {soql, maxFetch?, scanAll?, columnDelimiter?, lineEnding?}
//
// Scenarios:
//   rest    conn.query(soql, {autoFetch: true, maxFetch, scanAll}) -> {totalSize, done, records}
//   more    conn.query(soql) then conn.queryMore(nextRecordsUrl) until done -> {pages, records}
//   bulk2   conn.bulk2.query(soql, {scanAll, columnDelimiter, lineEnding}) -> {records}
import { readFileSync } from 'node:fs';
import jsforce from 'jsforce';

const [instanceUrl, accessToken, scenario] = process.argv.slice(2);

function finish(doc, code) {
  process.stdout.write(JSON.stringify(doc), () => process.exit(code));
}

function readParams() {
  const text = readFileSync(0, 'utf8');
  return text.trim() ? JSON.parse(text) : {};
}

async function rest(conn, p) {
  const res = await conn.query(p.soql, {
    autoFetch: true,
    maxFetch: p.maxFetch ?? 10000,
    scanAll: p.scanAll ?? false,
  });
  return { totalSize: res.totalSize, done: res.done, records: res.records };
}

async function more(conn, p) {
  const pages = [];
  let res = await conn.query(p.soql, { scanAll: p.scanAll ?? false });
  pages.push(res.records.length);
  const records = [...res.records];
  while (!res.done) {
    res = await conn.queryMore(res.nextRecordsUrl);
    pages.push(res.records.length);
    records.push(...res.records);
  }
  return { pages, records, totalSize: res.totalSize };
}

async function bulk2(conn, p) {
  const stream = await conn.bulk2.query(p.soql, {
    scanAll: p.scanAll ?? false,
    columnDelimiter: p.columnDelimiter,
    lineEnding: p.lineEnding,
    pollInterval: 50,
    pollTimeout: 60000,
  });
  const records = [];
  await new Promise((resolve, reject) => {
    stream.on('record', (r) => records.push(r));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return { records };
}

async function main() {
  const conn = new jsforce.Connection({ instanceUrl, accessToken, version: '59.0' });
  const p = readParams();
  try {
    const run = { rest, more, bulk2 }[scenario];
    finish(await run(conn, p), 0);
  } catch (err) {
    finish({ error: { name: err.name, message: err.message, errorCode: err.errorCode ?? null } }, 1);
  }
}

main();
