// A realistic audit workload for the benchmarks: application statements with
// varying literals (so analysis caches mostly miss), some DDL and admin
// statements, logins (a few failing) and logouts.
import type { AuditEvent } from '@dbtap/core';

let seed = 12345;
/** Deterministic pseudo-random integer in [0, n). */
export function rnd(n: number): number {
  // xorshift32
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

const names = ['alice', 'bob', "o'brien", 'carol', 'dave', 'eve', 'mallory'];
const S = (): string => `'${names[rnd(names.length)]}${rnd(1000)}'`;
const N = (): number => rnd(100000);

/** Statement generators with weights (per 100). */
const TEMPLATES: [number, () => string][] = [
  [14, () => `SELECT id, name, email FROM users WHERE id = ${N()}`],
  [8, () => `SELECT * FROM orders WHERE customer_id = ${N()} AND status IN ('open', 'paid', 'shipped') ORDER BY created_at DESC LIMIT 20`],
  [6, () => `SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at >= '2026-01-${1 + rnd(28)}' LIMIT ${rnd(100)}, 50`],
  [5, () => `SELECT COUNT(*) FROM sessions WHERE user_id = ${N()} AND expires_at > NOW()`],
  [5, () => `select p.sku, p.price from products p where p.category_id in (${N()}, ${N()}, ${N()}) and p.active = 1`],
  [4, () => `SELECT name FROM users WHERE email = ${S()} AND password_hash = ${S()}`],
  [4, () => `SELECT * FROM t_liablityeffectnotice WHERE POLICYNO = $1 AND NOTICEFLAG = $2`],
  [3, () => `SELECT @@version_comment LIMIT 1`],
  [8, () => `INSERT INTO audit_log (user_id, action, created_at) VALUES (${N()}, ${S()}, NOW())`],
  [5, () => `INSERT INTO order_items (order_id, sku, qty, price) VALUES (${N()}, ${S()}, ${rnd(9)}, ${rnd(999)}.99), (${N()}, ${S()}, 1, 5.00)`],
  [8, () => `UPDATE users SET last_login = NOW(), login_count = login_count + 1 WHERE id = ${N()}`],
  [3, () => `UPDATE orders SET status = 'shipped' WHERE id = ${N()} AND status = 'paid'`],
  [4, () => `DELETE FROM sessions WHERE expires_at < '2026-01-0${1 + rnd(9)}'`],
  [6, () => `SET autocommit=${rnd(2)}`],
  [4, () => (rnd(2) === 0 ? 'COMMIT' : 'BEGIN')],
  [3, () => `SHOW WARNINGS`],
  [2, () => `SELECT table_name FROM information_schema.tables WHERE table_schema = ${S()}`],
  [1, () => `ALTER TABLE users ADD COLUMN c${rnd(100)} INT`],
  [1, () => `DELETE FROM cart`],
  [1, () => `SELECT * FROM users WHERE name = '' OR '1'='1'`],
  [1, () => `CALL refresh_stats(${N()})`],
  [4, () => `SELECT id FROM users WHERE name LIKE ${S()} ORDER BY id ASC LIMIT 10 OFFSET ${rnd(1000)}`],
];
const TOTAL = TEMPLATES.reduce((a, [w]) => a + w, 0);

/**
 * One random statement text, decoded from bytes as a protocol decoder
 * decodes it: a flat string. (A template literal builds a rope whose first
 * character access flattens it, a cost no record from a decoder carries.)
 */
export function statement(): string {
  let r = rnd(TOTAL);
  for (const [w, f] of TEMPLATES) {
    if (r < w) return fromBytes(f());
    r -= w;
  }
  return fromBytes(TEMPLATES[0]![1]());
}

function fromBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** Application servers and the users they connect as; people use their desktops. */
const APP_HOSTS = ['10.0.1.11', '10.0.1.12', '10.0.1.13', '10.0.1.14'];
const PEOPLE = [
  { user: 'alice', ip: '10.0.9.21', program: 'mysql' },
  { user: 'bob', ip: '10.0.9.22', program: 'DBeaver' },
  { user: 'carol', ip: '10.0.9.23', program: 'MySQL Workbench' },
];

/**
 * `n` audit records: 90% statements, 7% logins (one in fifty failing), 3%
 * logouts. Application users connect from two application servers each,
 * people from their desktops. Records are built the way the protocol
 * decoders build them (a base object, then the fields the exchange
 * carried), so property layouts match what the engine meets in a pipeline.
 */
export function events(n: number, startTs = Date.UTC(2026, 0, 5, 9, 0, 0) * 1000): AuditEvent[] {
  const out: AuditEvent[] = [];
  let ts = startTs;
  for (let i = 0; i < n; i++) {
    ts += 50 + rnd(200);
    let user: string;
    let ip: string;
    let program: string;
    if (rnd(20) === 0) {
      const p = PEOPLE[rnd(PEOPLE.length)]!;
      user = p.user;
      ip = p.ip;
      program = p.program;
    } else {
      const u = rnd(20);
      user = `app${u}`;
      ip = APP_HOSTS[(u + rnd(2)) % APP_HOSTS.length]!;
      program = 'billing-service';
    }
    const k = rnd(100);
    const kind = k < 90 ? 'statement' : k < 97 ? 'login' : 'logout';
    const flowId = `f${i % 5000}`;
    const ev: AuditEvent = { id: '', kind, flowId, ts, client: { ip, port: 30000 + rnd(30000) }, server: { ip: '10.1.0.1', port: 3306 }, dbType: 'mysql', status: 'unknown' };
    ev.user = user;
    ev.database = 'shop';
    ev.clientProgram = program;
    if (kind === 'statement') {
      const dur = rnd(100) === 0 ? 2_000_000 + rnd(5_000_000) : 100 + rnd(20_000);
      ev.command = 'COM_QUERY';
      ev.sql = statement();
      ev.endTs = ts + dur;
      ev.durationUs = dur;
      ev.rowsReturned = rnd(50);
      ev.affectedRows = rnd(3);
      ev.status = 'ok';
    } else ev.status = kind === 'login' && rnd(50) === 0 ? 'error' : 'ok';
    ev.id = `${flowId}:${i}`;
    out.push(ev);
  }
  return out;
}
