// jsforce's record calls against a bulkforce server (tests/test_client_jsforce_records.py):
// conn.sobject(...).create/update/upsert/destroy of one record (sObject rows) and of lists
// (sObject collections).
//
//   node records.mjs <instanceUrl> <accessToken> <scenario>   (params as JSON on stdin)
//
// Prints one JSON document with every call's result (exit 0), or {"error": {...}} (exit 1).
import jsforce from 'jsforce';

const [instanceUrl, accessToken, scenario] = process.argv.slice(2);

function finish(doc, code) {
  process.stdout.write(JSON.stringify(doc), () => process.exit(code));
}

async function readStdin() {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text || '{}');
}

async function caught(promise) {
  try {
    return { ok: await promise };
  } catch (err) {
    return { error: { name: err.name, errorCode: err.errorCode ?? null, message: err.message } };
  }
}

const scenarios = {
  // one record at a time: sObject rows
  async single(conn, { tag, ext }) {
    const contact = conn.sobject('Contact');
    const created = await contact.create({ LastName: tag, Email: 'one@example.com' });
    const updated = await contact.update({ Id: created.id, FirstName: 'Ada' });
    const inserted = await contact.upsert({ External_Id__c: ext, LastName: `${tag}-u` }, 'External_Id__c');
    const upserted = await contact.upsert({ External_Id__c: ext, LastName: `${tag}-v` }, 'External_Id__c');
    const record = await contact.retrieve(created.id);
    const destroyed = await contact.destroy(created.id);
    const failed = await caught(contact.create({ FirstName: 'no last name' }));
    const gone = await caught(contact.update({ Id: created.id, FirstName: 'x' }));
    return { created, updated, inserted, upserted, record, destroyed, failed, gone };
  },
  // lists: sObject collections
  async many(conn, { tag, ext }) {
    const contact = conn.sobject('Contact');
    const created = await contact.create([
      { LastName: `${tag}-1` }, { FirstName: 'no last name' }, { LastName: `${tag}-3` },
    ]);
    const ids = created.filter((r) => r.success).map((r) => r.id);
    const updated = await contact.update(ids.map((Id, n) => ({ Id, FirstName: `F${n}` })));
    const upserted = await contact.upsert(
      [{ External_Id__c: `${ext}-a`, LastName: `${tag}-a` }, { External_Id__c: `${ext}-b`, LastName: `${tag}-b` }],
      'External_Id__c',
    );
    const upsertedAgain = await contact.upsert(
      [{ External_Id__c: `${ext}-a`, LastName: `${tag}-a2` }], 'External_Id__c',
    );
    const retrieved = await contact.retrieve(ids, { fields: ['LastName', 'FirstName'] });
    const destroyed = await contact.destroy(ids);
    const rolledBack = await caught(contact.create(
      [{ LastName: `${tag}-aon` }, { FirstName: 'bad' }], { allOrNone: true },
    ));
    return { created, updated, upserted, upsertedAgain, retrieved, destroyed, rolledBack };
  },
};

async function main() {
  const conn = new jsforce.Connection({ instanceUrl, accessToken, version: '59.0' });
  try {
    const params = await readStdin();
    finish(await scenarios[scenario](conn, params), 0);
  } catch (err) {
    finish({ error: { name: err.name, message: err.message, errorCode: err.errorCode ?? null } }, 1);
  }
}

main();
