// The REST calls jsforce makes around bulk loads, against a bulkforce server
// (tests/test_org_rest.py).
//
//   node rest.mjs <instanceUrl> <accessToken> <sobject> <recordId>
//
// Prints one JSON document: what conn.describe(sobject), conn.describeGlobal(),
// conn.sobject(sobject).retrieve(recordId) and conn.limits() returned (exit 0), or
// {"error": {...}} (exit 1).
import jsforce from 'jsforce';

const [instanceUrl, accessToken, sobject, recordId] = process.argv.slice(2);

function finish(doc, code) {
  process.stdout.write(JSON.stringify(doc), () => process.exit(code));
}

async function main() {
  const conn = new jsforce.Connection({ instanceUrl, accessToken, version: '59.0' });
  try {
    const describe = await conn.describe(sobject);
    const global = await conn.describeGlobal();
    const record = await conn.sobject(sobject).retrieve(recordId);
    const limits = await conn.limits();
    let missing = null;
    try {
      await conn.describe('No_Such_Object__c');
    } catch (err) {
      missing = { name: err.name, errorCode: err.errorCode ?? null, message: err.message };
    }
    finish({ describe, global, record, limits, missing }, 0);
  } catch (err) {
    finish({ error: { name: err.name, message: err.message, errorCode: err.errorCode ?? null } }, 1);
  }
}

main();
