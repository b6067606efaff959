// Shared fixtures of the store tests: a deterministic audit log and the
// behaviour every AuditStore must show, run against each implementation.
import type { TestFn } from 'ava';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { isDbtapError, type AuditEvent, type RiskLevel, type StatementType } from '@dbtap/core';
import type { AuditStore, RecordQuery } from '../src/store/index.js';

/** 2024-03-01T00:00:00Z in µs. */
export const T0 = Date.UTC(2024, 2, 1) * 1000;
export const MIN = 60_000_000;
export const DAY = 86_400_000_000;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const users = ['alice', 'bob', 'carol', 'svc_report'];
const programs = ['mysql', 'psql', 'reporting-job'];
const tables: { schema?: string; name: string }[] = [{ schema: 'shop', name: 'Orders' }, { name: 'customer_accounts' }, { schema: 'hr', name: 'salaries' }, { name: 'audit_log' }];
const statements: { sql: (t: string) => string; type: StatementType; verb: string; op: string }[] = [
  { sql: (t) => `SELECT * FROM ${t} WHERE id = 42`, type: 'select', verb: 'SELECT', op: 'read' },
  { sql: (t) => `INSERT INTO ${t} (a, b) VALUES (1, 'x')`, type: 'insert', verb: 'INSERT', op: 'write' },
  { sql: (t) => `UPDATE ${t} SET flag = 1 WHERE owner = 'mallory'`, type: 'update', verb: 'UPDATE', op: 'write' },
  { sql: (t) => `DELETE FROM ${t} WHERE created < now()`, type: 'delete', verb: 'DELETE', op: 'write' },
  { sql: (t) => `DROP TABLE ${t}`, type: 'ddl', verb: 'DROP TABLE', op: 'drop' },
];
const risks: RiskLevel[] = ['none', 'none', 'none', 'info', 'low', 'medium', 'high'];

/**
 * A deterministic audit log: `sessions` connections, each a login, a few
 * statements and (mostly) a logout, plus alert records; records share
 * timestamps now and then so that ordering ties are exercised.
 */
export function makeLog(sessions = 24, seed = 7, base = T0): AuditEvent[] {
  const rand = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const out: AuditEvent[] = [];
  for (let s = 0; s < sessions; s++) {
    const flowId = `f${seed}-${s}`;
    const user = pick(users);
    const program = pick(programs);
    const client = { ip: `127.0.0.${1 + (s % 5)}`, port: 40000 + s };
    const dbType = s % 3 === 0 ? 'postgres' : 'mysql';
    const server = { ip: '127.0.0.1', port: dbType === 'mysql' ? 3306 : 5432 };
    const auditObjectId = s % 4 === 0 ? 'db-hr' : 'db-shop';
    let ts = base + s * 7 * MIN + Math.floor(rand() * MIN);
    let n = 0;
    const common = { flowId, client, server, dbType, user, clientProgram: program, database: dbType === 'mysql' ? 'shop' : 'main', auditObjectId, sessionId: String(1000 + s) };
    const loginFailed = rand() < 0.15;
    out.push({ ...common, id: `${flowId}:${n++}`, kind: 'login', ts, endTs: ts + 900, durationUs: 900, status: loginFailed ? 'error' : 'ok', risk: loginFailed ? 'low' : 'none', ...(loginFailed ? { errorCode: 1045, message: 'Access denied', ruleIds: ['login-failed'] } : {}) });
    if (loginFailed) continue;
    const count = 2 + Math.floor(rand() * 6);
    for (let i = 0; i < count; i++) {
      // Every fifth statement shares its timestamp with the previous record.
      if (i % 5 !== 4) ts += 1000 + Math.floor(rand() * 20 * MIN / count);
      const st = pick(statements);
      const table = pick(tables);
      const name = table.schema ? `${table.schema}.${table.name}` : table.name;
      const risk = st.type === 'ddl' ? 'high' : pick(risks);
      const error = rand() < 0.1;
      const dur = 200 + Math.floor(rand() * 5000);
      const e: AuditEvent = {
        ...common, id: `${flowId}:${n++}`, kind: 'statement', ts, endTs: ts + dur, durationUs: dur, command: 'COM_QUERY',
        sql: st.sql(name), statementType: st.type, verb: st.verb, objects: [{ ...table, op: st.op }], status: error ? 'error' : 'ok', risk,
      };
      if (error) { e.errorCode = 1146; e.message = `Table '${name}' doesn't exist`; }
      if (risk === 'high') e.ruleIds = st.type === 'ddl' ? ['ddl-drop', 'sensitive-object'] : ['sensitive-object'];
      if (st.type === 'select') { e.rowsReturned = 1; e.params = [42n as unknown as number, null, 'x']; }
      out.push(e);
      if (risk === 'high') {
        out.push({
          ...common, id: `${flowId}:${n++}`, kind: 'alert', ts, status: 'ok', risk: 'high', ruleIds: ['sensitive-object'],
          alert: { ruleId: st.type === 'ddl' ? 'ddl-drop' : 'sensitive-object', name: 'sensitive', reason: `${st.verb} on ${name}`, eventIds: [e.id] },
        });
      }
    }
    if (rand() < 0.8) {
      ts += 500;
      out.push({ ...common, id: `${flowId}:${n++}`, kind: 'logout', ts, status: 'ok', risk: 'none' });
    }
  }
  return out;
}

const rank: Record<RiskLevel, number> = { none: 0, info: 1, low: 2, medium: 3, high: 4 };

/** The reference answer to a query: filters and orders the log in memory. */
export function oracle(log: readonly AuditEvent[], q: RecordQuery & { from?: number; to?: number }): AuditEvent[] {
  const objKeys = (e: AuditEvent): string[] =>
    (e.objects ?? []).flatMap((o) => {
      const schema = (o.schema ?? e.database ?? '').toLowerCase();
      return schema ? [o.name.toLowerCase(), `${schema}.${o.name.toLowerCase()}`] : [o.name.toLowerCase()];
    });
  const words = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const hasPhrase = (sql: string, term: string): boolean => {
    const w = words(sql);
    const t = words(term);
    const prefix = term.endsWith('*');
    for (let i = 0; i + t.length <= w.length; i++) {
      if (t.every((x, j) => (prefix && j === t.length - 1 ? w[i + j]!.startsWith(x) : w[i + j] === x))) return true;
    }
    return false;
  };
  const kinds = q.kind === undefined ? undefined : ([] as string[]).concat(q.kind);
  const types = q.statementType === undefined ? undefined : ([] as string[]).concat(q.statementType);
  const idx = new Map(log.map((e, i) => [e, i]));
  const rows = log.filter(
    (e) =>
      (q.from === undefined || Math.floor(e.ts) >= q.from) &&
      (q.to === undefined || Math.floor(e.ts) < q.to) &&
      (kinds === undefined || kinds.includes(e.kind)) &&
      (q.auditObjectId === undefined || e.auditObjectId === q.auditObjectId) &&
      (q.user === undefined || e.user === q.user) &&
      (q.clientIp === undefined || e.client.ip === q.clientIp) &&
      (q.program === undefined || e.clientProgram === q.program) &&
      (q.dbType === undefined || e.dbType === q.dbType) &&
      (types === undefined || (e.statementType !== undefined && types.includes(e.statementType))) &&
      (q.object === undefined || objKeys(e).includes(q.object.toLowerCase())) &&
      (q.minRisk === undefined || rank[e.risk ?? 'none'] >= rank[q.minRisk]) &&
      (q.ruleId === undefined || (e.ruleIds ?? []).includes(q.ruleId) || e.alert?.ruleId === q.ruleId) &&
      (q.status === undefined || e.status === q.status) &&
      (q.flowId === undefined || e.flowId === q.flowId) &&
      (q.text === undefined || q.text.split(/\s+/).filter(Boolean).every((t) => hasPhrase(e.sql ?? '', t))),
  );
  rows.sort((a, b) => Math.floor(a.ts) - Math.floor(b.ts) || idx.get(a)! - idx.get(b)!);
  if (q.order !== 'asc') rows.reverse();
  return rows;
}

/** All pages of a search, following cursors. */
export async function searchAll(store: AuditStore, q: RecordQuery): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 10_000; guard++) {
    const page = await store.search({ ...q, cursor });
    out.push(...page.records);
    if (page.nextCursor === undefined) return out;
    cursor = page.nextCursor;
  }
  throw new Error('pagination did not end');
}

/** Stored JSON drops bigints to strings; compare records through the same lens. */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))) as T;
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reads every record of the gzip NDJSON files in a directory. */
export function readExports(dir: string): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ndjson.gz')).sort()) {
    const text = gunzipSync(readFileSync(join(dir, f))).toString('utf8');
    for (const line of text.split('\n')) if (line !== '') out.push(JSON.parse(line) as AuditEvent);
  }
  return out;
}

/**
 * Registers the behaviour every {@link AuditStore} must show. `open` returns
 * a fresh, empty store for each test.
 */
export function storeContract(test: TestFn, label: string, open: () => Promise<AuditStore>): void {
  const log = makeLog();

  const withStore = (title: string, fn: (store: AuditStore) => Promise<void>): void => {
    test(`${label}: ${title}`, async (t) => {
      const store = await open();
      try {
        await fn(store);
        t.pass();
      } finally {
        await store.close();
      }
    });
  };

  const queries: [string, RecordQuery & { from?: number; to?: number }][] = [
    ['everything, newest first', {}],
    ['everything, oldest first', { order: 'asc' }],
    ['time range', { from: T0 + 30 * MIN, to: T0 + 90 * MIN, order: 'asc' }],
    ['kind', { kind: 'login' }],
    ['kinds', { kind: ['login', 'logout'] }],
    ['audit object', { auditObjectId: 'db-hr' }],
    ['user', { user: 'bob' }],
    ['client ip', { clientIp: '127.0.0.3' }],
    ['program', { program: 'reporting-job' }],
    ['db type', { dbType: 'postgres' }],
    ['statement type', { statementType: 'delete' }],
    ['statement types', { statementType: ['insert', 'update'] }],
    ['object, qualified and case-folded', { object: 'SHOP.orders' }],
    ['object, bare name matches qualified references', { object: 'orders' }],
    ['object, unqualified reference resolved by current database', { object: 'shop.customer_accounts' }],
    ['minimum risk', { minRisk: 'medium' }],
    ['rule id', { ruleId: 'ddl-drop' }],
    ['status', { status: 'error' }],
    ['flow', { flowId: 'f7-3' }],
    ['full text, identifier phrase', { text: 'customer_accounts' }],
    ['full text, all terms', { text: 'mallory salaries' }],
    ['full text, prefix', { text: 'sala*' }],
    ['combined filters', { user: 'alice', statementType: 'select', status: 'ok', order: 'asc' }],
    ['nothing matches', { user: 'nobody' }],
  ];

  withStore('search answers every filter like the reference', async (store) => {
    await store.append(log.slice(0, 100));
    await store.append(log.slice(100));
    for (const [name, q] of queries) {
      const want = oracle(log, q).map((e) => e.id);
      const got = (await searchAll(store, { ...q, limit: 9 })).map((e) => e.id);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(`${name}: expected ${want.length} records ${want.slice(0, 8).join(',')}..., got ${got.length}: ${got.slice(0, 8).join(',')}...`);
      }
      if (name !== 'nothing matches' && want.length === 0) throw new Error(`${name}: the fixture has no match, the query proves nothing`);
    }
  });

  withStore('records come back as appended, bigints as text', async (store) => {
    await store.append(log);
    const stored = await searchAll(store, { order: 'asc', limit: 1000 });
    const byId = new Map(stored.map((e) => [e.id, e]));
    for (const e of log) {
      const got = byId.get(e.id);
      if (JSON.stringify(got) !== JSON.stringify(plain(e))) throw new Error(`record ${e.id} changed: ${JSON.stringify(got)}`);
    }
  });

  withStore('ISO 8601 ranges equal microsecond ranges', async (store) => {
    await store.append(log);
    const a = await searchAll(store, { from: '2024-03-01T00:30:00Z', to: '2024-03-01T02:30:00.000001+01:00' });
    const b = await searchAll(store, { from: T0 + 30 * MIN, to: T0 + 90 * MIN + 1 });
    if (a.length === 0 || JSON.stringify(a.map((e) => e.id)) !== JSON.stringify(b.map((e) => e.id))) throw new Error('ISO range differs');
  });

  withStore('a retried batch is stored once', async (store) => {
    await store.append(log);
    await store.append(log.slice(10, 60));
    const stats = await store.stats();
    if (stats.records !== log.length) throw new Error(`records ${stats.records}, expected ${log.length}`);
    const t = await store.session('f7-1');
    const want = log.filter((e) => e.flowId === 'f7-1' && e.kind !== 'alert').length;
    if (t === undefined || t.session.records !== want) throw new Error(`session counted ${t?.session.records}, expected ${want}`);
  });

  withStore('pages stay stable while records are inserted', async (store) => {
    const first = log.filter((_, i) => i % 2 === 0);
    const later = log.filter((_, i) => i % 2 === 1);
    await store.append(first);
    for (const order of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let inserted = 0;
      for (;;) {
        const page = await store.search({ order, limit: 7, cursor });
        seen.push(...page.records.map((e) => e.id));
        // Interleave inserts of older and newer records between pages.
        if (order === 'asc' && inserted < later.length) {
          await store.append(later.slice(inserted, inserted + 11));
          inserted += 11;
        }
        if (page.nextCursor === undefined) break;
        cursor = page.nextCursor;
      }
      if (new Set(seen).size !== seen.length) throw new Error(`${order}: a record appeared twice`);
      for (const e of first) if (!seen.includes(e.id)) throw new Error(`${order}: ${e.id} was skipped`);
      const ts = new Map(log.map((e) => [e.id, Math.floor(e.ts)]));
      for (let i = 1; i < seen.length; i++) {
        const d = ts.get(seen[i]!)! - ts.get(seen[i - 1]!)!;
        if (order === 'asc' ? d < 0 : d > 0) throw new Error(`${order}: out of order at ${i}`);
      }
    }
  });

  withStore('sessions list, filter and replay in order with timings', async (store) => {
    await store.append(log);
    const flows = [...new Set(log.filter((e) => e.kind !== 'alert').map((e) => e.flowId))];
    const all = await store.sessions({ order: 'asc', limit: 1000 });
    if (all.sessions.length !== flows.length) throw new Error(`sessions ${all.sessions.length}, expected ${flows.length}`);
    for (let i = 1; i < all.sessions.length; i++) if (all.sessions[i]!.start < all.sessions[i - 1]!.start) throw new Error('sessions out of order');
    const bob = await store.sessions({ user: 'bob', limit: 1000 });
    const bobFlows = new Set(log.filter((e) => e.user === 'bob').map((e) => e.flowId));
    if (bob.sessions.length !== bobFlows.size || !bob.sessions.every((s) => s.user === 'bob')) throw new Error('user filter on sessions');
    const errs = await store.sessions({ hasErrors: true, limit: 1000 });
    const errFlows = new Set(log.filter((e) => e.status === 'error' && e.kind !== 'alert').map((e) => e.flowId));
    if (errs.sessions.length !== errFlows.size) throw new Error(`hasErrors ${errs.sessions.length}, expected ${errFlows.size}`);
    // Overlap: a session that started before `from` but ended after it is in range.
    const s5 = all.sessions[5]!;
    const overlap = await store.sessions({ from: s5.start + 1, to: s5.start + 2, limit: 1000 });
    if (!overlap.sessions.some((s) => s.id === s5.id)) throw new Error('overlapping session missing');
    // Paging.
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const p = await store.sessions({ limit: 5, cursor });
      paged.push(...p.sessions.map((s) => s.id));
      cursor = p.nextCursor;
    } while (cursor !== undefined);
    if (paged.length !== flows.length || new Set(paged).size !== flows.length) throw new Error('session paging');

    const id = 'f7-2';
    const t = await store.session(id);
    if (t === undefined) throw new Error('session missing');
    const want = log.filter((e) => e.flowId === id);
    if (JSON.stringify(t.entries.map((x) => x.record.id)) !== JSON.stringify(want.map((e) => e.id))) throw new Error('timeline order');
    const start = want[0]!.ts;
    let prevEnd = 0;
    t.entries.forEach((x, i) => {
      if (x.offsetUs !== x.record.ts - start) throw new Error('offset');
      const idle = i === 0 ? 0 : Math.max(0, x.record.ts - prevEnd);
      if (x.idleUs !== idle) throw new Error(`idle at ${i}: ${x.idleUs} != ${idle}`);
      prevEnd = Math.max(prevEnd, x.record.endTs ?? x.record.ts);
    });
    const s = t.session;
    const w = want.filter((e) => e.kind !== 'alert');
    if (s.start !== start || s.records !== w.length || s.statements !== w.filter((e) => e.kind === 'statement').length || s.user !== want[0]!.user || s.clientProgram !== want[0]!.clientProgram || s.client.port !== want[0]!.client.port || s.login !== want[0]!.status) {
      throw new Error(`summary wrong: ${JSON.stringify(s)}`);
    }
    if (s.ended !== w.some((e) => e.kind === 'logout')) throw new Error('ended flag');
    if ((await store.session('no-such-flow')) !== undefined) throw new Error('unknown session should be undefined');
  });

  withStore('alerts list and acknowledge', async (store) => {
    await store.append(log);
    const alerts = log.filter((e) => e.kind === 'alert');
    const page = await store.alerts({ limit: 1000 });
    if (page.alerts.length !== alerts.length || page.alerts.some((a) => a.acknowledged !== undefined)) throw new Error('alert list');
    const target = alerts[1]!;
    const ack = await store.acknowledgeAlert(target.id, 'soc-analyst');
    if (ack?.by !== 'soc-analyst' || !(ack.at > 0)) throw new Error('ack result');
    const again = await store.acknowledgeAlert(target.id, 'someone-else');
    if (again?.by !== 'soc-analyst' || again.at !== ack.at) throw new Error('second ack must keep the first');
    if ((await store.acknowledgeAlert('nope', 'x')) !== undefined) throw new Error('unknown alert acknowledged');
    if ((await store.acknowledgeAlert(log[0]!.id, 'x')) !== undefined) throw new Error('a login record acknowledged as alert');
    const acked = await store.alerts({ acknowledged: true });
    if (acked.alerts.length !== 1 || acked.alerts[0]!.record.id !== target.id || acked.alerts[0]!.acknowledged?.by !== 'soc-analyst') throw new Error('acknowledged filter');
    const open = await store.alerts({ acknowledged: false, limit: 1000 });
    if (open.alerts.length !== alerts.length - 1) throw new Error('unacknowledged filter');
    const drops = await store.alerts({ ruleId: 'ddl-drop', limit: 1000 });
    if (drops.alerts.length !== alerts.filter((a) => a.alert?.ruleId === 'ddl-drop').length || drops.alerts.length === 0) throw new Error('alert rule filter');
    const stats = await store.stats();
    if (stats.alerts !== alerts.length || stats.unacknowledgedAlerts !== alerts.length - 1) throw new Error(`stats ${JSON.stringify(stats)}`);
  });

  withStore('summary counts by type, user, object, status and risk', async (store) => {
    await store.append(log);
    const from = T0 + 20 * MIN;
    const to = T0 + 120 * MIN;
    const r = await store.summary({ from: '2024-03-01T00:20:00Z', to, top: 100 });
    const inRange = log.filter((e) => Math.floor(e.ts) >= from && Math.floor(e.ts) < to);
    const count = (f: (e: AuditEvent) => string | undefined, rows = inRange): Record<string, number> => {
      const m: Record<string, number> = {};
      for (const e of rows) { const k = f(e) ?? ''; m[k] = (m[k] ?? 0) + 1; }
      return m;
    };
    const asMap = (l: { key: string; count: number }[]): Record<string, number> => Object.fromEntries(l.map((x) => [x.key, x.count]));
    const eq = (name: string, got: Record<string, number>, want: Record<string, number>): void => {
      const norm = (o: Record<string, number>): string => JSON.stringify(Object.entries(o).sort());
      if (norm(got) !== norm(want)) throw new Error(`${name}: ${norm(got)} != ${norm(want)}`);
    };
    if (r.total !== inRange.length || r.from !== from || r.to !== to) throw new Error('summary total/range');
    eq('byKind', asMap(r.byKind), count((e) => e.kind));
    eq('byUser', asMap(r.byUser), count((e) => e.user));
    eq('byStatus', asMap(r.byStatus), count((e) => e.status));
    eq('byRisk', asMap(r.byRisk), count((e) => e.risk ?? 'none'));
    eq('byStatementType', asMap(r.byStatementType), count((e) => e.statementType, inRange.filter((e) => e.kind === 'statement')));
    const objs: Record<string, number> = {};
    for (const e of inRange) for (const o of e.objects ?? []) { const k = `${(o.schema ?? e.database)!.toLowerCase()}.${o.name.toLowerCase()}`; objs[k] = (objs[k] ?? 0) + 1; }
    eq('byObject', asMap(r.byObject), objs);
    const top = await store.summary({ top: 1 });
    if (top.byUser.length !== 1 || top.total !== log.length) throw new Error('top');
  });

  withStore('retention by age exports exactly the removed records first', async (store) => {
    await store.append(log);
    const tmp = tempDir('dbtap-ret-');
    try {
      const now = T0 + 2 * DAY;
      const cutoff = now - 1.97 * DAY; // about 43 minutes after T0
      const r = await store.retention({ maxAgeDays: 1.97, exportDir: tmp.dir, now });
      const removed = log.filter((e) => Math.floor(e.ts) < cutoff);
      if (removed.length === 0 || r.removed !== removed.length) throw new Error(`removed ${r.removed}, expected ${removed.length}`);
      if (r.exportFile === undefined) throw new Error('no export file');
      const exported = readExports(tmp.dir);
      const sortIds = (l: AuditEvent[]): string => JSON.stringify(l.map((e) => e.id).sort());
      if (sortIds(exported) !== sortIds(removed)) throw new Error('export differs from removed set');
      const byId = new Map(exported.map((e) => [e.id, e]));
      for (const e of removed) if (JSON.stringify(byId.get(e.id)) !== JSON.stringify(plain(e))) throw new Error(`exported ${e.id} differs`);
      const left = await searchAll(store, { limit: 1000 });
      if (left.length !== log.length - removed.length || left.some((e) => Math.floor(e.ts) < cutoff)) throw new Error('records left');
      if ((await searchAll(store, { text: 'mallory' })).some((e) => Math.floor(e.ts) < cutoff)) throw new Error('full-text index kept removed rows');
      const stats = await store.stats();
      if (stats.records !== left.length || (stats.oldest ?? 0) < cutoff) throw new Error('stats after retention');
      const again = await store.retention({ maxAgeDays: 1.97, exportDir: tmp.dir, now });
      if (again.removed !== 0 || again.exportFile !== undefined) throw new Error('second run should remove nothing');
    } finally {
      tmp.cleanup();
    }
  });

  withStore('retention by size removes the oldest records', async (store) => {
    await store.append(log);
    const before = await store.stats();
    const tmp = tempDir('dbtap-ret-');
    try {
      const r = await store.retention({ maxBytes: Math.floor(before.bytes / 2), exportDir: tmp.dir });
      const after = await store.stats();
      if (after.bytes > before.bytes / 2 || after.records + r.removed !== before.records || r.bytesRemoved !== before.bytes - after.bytes) throw new Error(`size retention ${JSON.stringify({ before, after, r })}`);
      const left = await searchAll(store, { order: 'asc', limit: 1000 });
      const exported = readExports(tmp.dir);
      if (exported.length !== r.removed) throw new Error('export count');
      const newestRemoved = Math.max(...exported.map((e) => Math.floor(e.ts)));
      if (left.some((e) => Math.floor(e.ts) < newestRemoved)) throw new Error('a newer record was removed before an older one');
    } finally {
      tmp.cleanup();
    }
  });

  withStore('bad queries fail with stable codes', async (store) => {
    await store.append(log.slice(0, 20));
    const expect = async (q: unknown, code: string): Promise<void> => {
      try {
        await store.search(q as RecordQuery);
      } catch (err) {
        if (isDbtapError(err) && err.code === code) return;
        throw new Error(`${JSON.stringify(q)}: wrong error ${String(err)}`);
      }
      throw new Error(`${JSON.stringify(q)}: accepted`);
    };
    await expect({ from: '2024-13-01T00:00:00Z' }, 'DBTAP_E_BAD_QUERY');
    await expect({ from: 'yesterday' }, 'DBTAP_E_BAD_QUERY');
    await expect({ from: T0 + 10, to: T0 }, 'DBTAP_E_BAD_QUERY');
    await expect({ limit: 0 }, 'DBTAP_E_BAD_QUERY');
    await expect({ limit: 1.5 }, 'DBTAP_E_BAD_QUERY');
    await expect({ kind: 'query' }, 'DBTAP_E_BAD_QUERY');
    await expect({ minRisk: 'severe' }, 'DBTAP_E_BAD_QUERY');
    await expect({ order: 'sideways' }, 'DBTAP_E_BAD_QUERY');
    await expect({ text: '"(*)"' }, 'DBTAP_E_BAD_QUERY');
    await expect({ cursor: 'not-a-cursor' }, 'DBTAP_E_BAD_CURSOR');
    const p = await store.search({ limit: 2, order: 'asc' });
    await expect({ cursor: p.nextCursor, order: 'desc' }, 'DBTAP_E_BAD_CURSOR');
    try {
      await store.append([{ id: 'x' } as unknown as AuditEvent]);
      throw new Error('bad record accepted');
    } catch (err) {
      if (!isDbtapError(err, 'DBTAP_E_BAD_RECORD')) throw err;
    }
    // FTS syntax in the text is taken literally, never as an FTS expression.
    const lit = await store.search({ text: 'SELECT OR NEAR(' });
    if (lit.records.some((e) => !/select/i.test(e.sql ?? ''))) throw new Error('text operators interpreted');
  });

  withStore('ingest positions commit with their batch or alone', async (store) => {
    if ((await store.ingestPosition('agent:a')) !== 0) throw new Error('unknown source should be at 0');
    await store.append(log.slice(0, 5), { position: { source: 'agent:a', seq: 7 } });
    await store.append([], { position: { source: 'agent:a', seq: 8 } });
    await store.append(log.slice(5, 6), { position: { source: 'agent:b', seq: 1 } });
    if ((await store.ingestPosition('agent:a')) !== 8 || (await store.ingestPosition('agent:b')) !== 1) throw new Error('positions not kept');
    if ((await store.stats()).records !== 6) throw new Error('records of positioned batches not stored');
    for (const position of [{ source: '', seq: 1 }, { source: 'x', seq: -1 }, { source: 'x', seq: 1.5 }]) {
      try {
        await store.append([], { position });
        throw new Error(`bad position accepted: ${JSON.stringify(position)}`);
      } catch (err) {
        if (!isDbtapError(err, 'DBTAP_E_BAD_RECORD')) throw err;
      }
    }
  });

  test(`${label}: a closed store refuses work`, async (t) => {
    const store = await open();
    await store.close();
    await store.close();
    const err = await t.throwsAsync(store.search({}));
    t.true(isDbtapError(err, 'DBTAP_E_STORE_CLOSED'));
  });
}
