// Runs the dmdb client (a real DM client, used through its public API only)
// against host:port with one scenario, printing one JSON line per step.
//   node test-support/dameng-client.mjs <port> <scenario>
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const dmdb = require('dmdb');
const [port, scenario] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const scenarios = {
  // Login in clear, a schema, a query with a GB18030 identifier, an update, an error, commit, close.
  clear: {
    url: `dm://AUDITOR:Pw_never_logged9@127.0.0.1:${port}?loginEncrypt=false&appName=dbtap-test&schema=SHOP&autoCommit=false&connectTimeout=3000`,
    sql: ['SELECT name FROM t_用户 WHERE id = 1', 'SELECT * FROM no_such_table', 'UPDATE t_用户 SET name = \'x\' WHERE id < 4', 'SELECT id FROM t_orders'],
    commit: true,
  },
  // The default: login encryption requested in the startup.
  encrypted: {
    url: `dm://SYSDBA:Pw_never_logged9@127.0.0.1:${port}?appName=dbtap-enc&connectTimeout=3000`,
    sql: ['SELECT 1 FROM dual'],
    commit: false,
  },
};

const s = scenarios[scenario];
try {
  const c = await dmdb.getConnection(s.url);
  out({ step: 'connected' });
  for (const sql of s.sql) {
    try {
      const r = await c.execute(sql);
      out({ step: 'execute', sql, rowsAffected: r.rowsAffected ?? null });
    } catch (e) {
      out({ step: 'execute', sql, error: String(e.message) });
    }
  }
  if (s.commit) await c.commit();
  await c.close();
  out({ step: 'closed' });
} catch (e) {
  out({ step: 'failed', error: String(e.message) });
}
process.exit(0);
