// Logs in to a bulkforce server with the real jsforce client, then runs a Bulk 2.0 insert job
// with the session it got (tests/test_auth_clients.py).
//
//   node login.mjs <loginUrl> <scenario>  < params.json
//
// params: {username?, password?, clientId?, clientSecret?, refreshToken?, records?}
// Prints one JSON document: the scenario's result (exit 0) or {"error": {...}} (exit 1).
//
// Scenarios:
//   soap     new Connection({loginUrl}).login(username, password): SOAP partner login()
//   oauth    the same with oauth2 {clientId, clientSecret}: the OAuth 2.0 password flow
//   refresh  a connection holding only a refresh token (and a dead access token): jsforce
//            refreshes on the first 401 INVALID_SESSION_ID and retries
//   logout   SOAP login, then conn.logout(); reports whether the old session still works
// Each (but a failed login) ends with a bulk2 job and reports {userInfo, instanceUrl,
// accessToken, job, results}.
import { readFileSync } from 'node:fs';
import jsforce from 'jsforce';

const VERSION = '59.0';
const [loginUrl, scenario] = process.argv.slice(2);

function readParams() {
  const text = readFileSync(0, 'utf8');
  return text.trim() ? JSON.parse(text) : {};
}

function describeError(err) {
  return { name: err?.name ?? null, message: err?.message ?? String(err), errorCode: err?.errorCode ?? null };
}

async function bulkInsert(conn, records) {
  const job = conn.bulk2.createJob({ object: 'Contact', operation: 'insert' });
  await job.open();
  await job.uploadData(records);
  await job.close();
  await job.poll(50, 60000);
  const results = await job.getAllResults();
  return { job: await job.check(), results };
}

async function loggedIn(conn, userInfo, p) {
  const token = conn.accessToken;
  const bulk = await bulkInsert(conn, p.records);
  return { userInfo, instanceUrl: conn.instanceUrl, accessToken: token, ...bulk };
}

const scenarios = {
  async soap(p) {
    const conn = new jsforce.Connection({ loginUrl, version: VERSION });
    return loggedIn(conn, await conn.login(p.username, p.password), p);
  },

  async oauth(p) {
    const conn = new jsforce.Connection({
      oauth2: { loginUrl, clientId: p.clientId, clientSecret: p.clientSecret },
      version: VERSION,
    });
    return loggedIn(conn, await conn.login(p.username, p.password), p);
  },

  async refresh(p) {
    const conn = new jsforce.Connection({
      oauth2: { loginUrl, clientId: p.clientId, clientSecret: p.clientSecret },
      instanceUrl: loginUrl,
      accessToken: 'expired-or-revoked',
      refreshToken: p.refreshToken,
      version: VERSION,
    });
    let refreshed = null;
    conn.on('refresh', (accessToken) => { refreshed = accessToken; });
    const bulk = await bulkInsert(conn, p.records);
    return { refreshedToken: refreshed, instanceUrl: conn.instanceUrl, accessToken: conn.accessToken, ...bulk };
  },

  async logout(p) {
    const conn = new jsforce.Connection({ loginUrl, version: VERSION });
    await conn.login(p.username, p.password);
    const token = conn.accessToken;
    const instanceUrl = conn.instanceUrl;
    await conn.logout();
    const after = new jsforce.Connection({ instanceUrl, accessToken: token, version: VERSION });
    let error = null;
    try {
      await after.bulk2.createJob({ object: 'Contact', operation: 'insert' }).open();
    } catch (err) {
      error = describeError(err);
    }
    return { accessToken: token, afterLogout: error };
  },
};

function finish(doc, code) {
  process.stdout.write(JSON.stringify(doc), () => process.exit(code));
}

async function main() {
  if (!loginUrl || !(scenario in scenarios)) {
    finish({ error: { name: 'Usage', message: `login.mjs <loginUrl> <${Object.keys(scenarios).join('|')}>` } }, 2);
    return;
  }
  try {
    finish(await scenarios[scenario](readParams()), 0);
  } catch (err) {
    finish({ error: describeError(err) }, 1);
  }
}

main();
